"""The retriever: what `POST /search` and the agent's search tool call, as the caller."""

from sqlmodel.ext.asyncio.session import AsyncSession

from docent.retrieval.embeddings import Embedder
from docent.retrieval.search import Mode, SearchHit, search_chunks


class Retriever:
    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    async def search(self, session: AsyncSession, *, query: str, k: int, mode: Mode = "hybrid") -> list[SearchHit]:
        """The caller's best chunks for `query`; `session` must be the caller's user transaction."""
        embedding = await self._embedder.embed_query(query) if mode != "keyword" else None
        return await search_chunks(session, query=query, embedding=embedding, model=self._embedder.name, k=k, mode=mode)
