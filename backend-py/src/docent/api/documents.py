"""Upload, list, inspect and delete documents; processing continues in the background."""

import hashlib
import re
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, BackgroundTasks, File, Form, Response, UploadFile
from pydantic import BaseModel, ConfigDict

from docent.api.deps import AppSettings, UserSession, Worker
from docent.auth import CurrentPrincipal
from docent.db import documents
from docent.db.models import Document
from docent.errors import InvalidContent, NotFound, TooLarge
from docent.ingestion.load import PDF, decode_text, detect_type

router = APIRouter(tags=["documents"])
_UNSAFE_FILENAME = re.compile(r"[/\\\x00-\x1f\x7f]")


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
    response: Response,
    title: Annotated[str | None, Form(min_length=1, max_length=500)] = None,
) -> Document:
    filename = _checked_filename(file.filename)
    content_type = detect_type(filename, file.content_type)
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise TooLarge(f"the file is larger than the {settings.max_upload_bytes} byte limit")
    if not data:
        raise InvalidContent("the file is empty", code="empty_file")
    if content_type != PDF:
        decode_text(data)
    content_hash = hashlib.sha256(data).hexdigest()
    existing = await documents.find_by_hash(session, user_id=principal.user_id, content_hash=content_hash)
    if existing is not None:
        response.status_code = 200  # the same bytes again: the document already uploaded
        return existing
    document = Document(
        user_id=principal.user_id, filename=filename, title=(title or filename).strip() or filename,
        content_type=content_type, size_bytes=len(data), content_hash=content_hash,
    )  # fmt: skip
    created = await documents.create_document(session, document=document, data=data)
    # After the response: by then the transaction has committed, so the worker can see it.
    background.add_task(worker.submit, created.id, principal.user_id)
    return created


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


def _checked_filename(filename: str | None) -> str:
    name = (filename or "").strip()
    if not name or len(name) > 255 or _UNSAFE_FILENAME.search(name):
        raise InvalidContent(
            "the file name must be 1-255 characters without path separators or control characters",
            code="bad_filename",
        )
    return name
