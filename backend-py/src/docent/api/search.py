"""`POST /search`: the caller's chunks, best first."""

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from docent.api.deps import AppRetriever, UserSession
from docent.api.json_body import StrictJSONRoute
from docent.retrieval.search import Mode, SearchHit

router = APIRouter(tags=["search"], route_class=StrictJSONRoute)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    k: int = Field(default=5, ge=1, le=50)
    mode: Mode = "hybrid"


class SearchResponse(BaseModel):
    results: list[SearchHit]


@router.post("/search")
async def search(body: SearchRequest, session: UserSession, retriever: AppRetriever) -> SearchResponse:
    hits = await retriever.search(session, query=body.query, k=body.k, mode=body.mode)
    return SearchResponse(results=hits)
