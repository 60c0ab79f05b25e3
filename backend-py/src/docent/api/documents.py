"""Upload, list, inspect and delete documents; processing continues in the background."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, BackgroundTasks, File, Form, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict

from docent.api.deps import AppSettings, UserSession, Worker
from docent.api.json_body import StrictJSONRoute
from docent.auth import CurrentPrincipal
from docent.db import documents
from docent.db.models import Document
from docent.errors import NotFound
from docent.ingestion.intake import accept_upload

router = APIRouter(tags=["documents"], route_class=StrictJSONRoute)


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    filename: str
    title: str
    content_type: str
    size_bytes: int
    status: str
    error: str | None
    chunk_count: int
    created_at: datetime
    updated_at: datetime


@router.post("/documents", status_code=202, response_model=DocumentOut)
async def upload_document(
    *,
    file: Annotated[UploadFile, File()],
    principal: CurrentPrincipal,
    session: UserSession,
    settings: AppSettings,
    worker: Worker,
    background: BackgroundTasks,
    request: Request,
    response: Response,
    title: Annotated[str | None, Form(min_length=1, max_length=500)] = None,
) -> Document:
    sent = len((await request.form()).getlist("file"))  # the form FastAPI parsed, not read again
    if sent > 1:  # FastAPI would keep the last one and drop the others silently
        problem = f"one file per upload; this form has {sent}"
        raise RequestValidationError([{"type": "value_error", "loc": ("body", "file"), "msg": problem}])
    data = await file.read(settings.max_upload_bytes + 1)
    document, created = await accept_upload(
        session, user_id=principal.user_id, filename=file.filename, declared_type=file.content_type,
        data=data, title=title, max_bytes=settings.max_upload_bytes,
    )  # fmt: skip
    if created:
        # After the response: by then the transaction has committed, so the worker can see it.
        background.add_task(worker.submit, document.id, principal.user_id)
    else:
        response.status_code = 200  # the same bytes again: the document already uploaded
    return document


@router.get("/documents", response_model=list[DocumentOut])
async def list_documents(principal: CurrentPrincipal, session: UserSession) -> list[Document]:
    return await documents.list_documents(session, user_id=principal.user_id)


@router.get("/documents/{document_id}", response_model=DocumentOut)
async def get_document(document_id: UUID, principal: CurrentPrincipal, session: UserSession) -> Document:
    found = await documents.get_document(session, user_id=principal.user_id, document_id=document_id)
    if found is None:
        raise NotFound("document not found")
    return found


@router.delete("/documents/{document_id}", status_code=204)
async def delete_document(document_id: UUID, principal: CurrentPrincipal, session: UserSession) -> None:
    if not await documents.delete_document(session, user_id=principal.user_id, document_id=document_id):
        raise NotFound("document not found")
