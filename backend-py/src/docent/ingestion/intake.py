"""Accepting an upload: the checks every entry point (HTTP, CLI) applies before storing."""

import hashlib
import re
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db import documents
from docent.db.models import Document
from docent.errors import InvalidContent, TooLarge
from docent.ingestion.clean import clean_title, has_invisible
from docent.ingestion.load import PDF, decode_text, detect_type

_UNSAFE_FILENAME = re.compile(r"[/\\\x00-\x1f\x7f]")


async def accept_upload(
    session: AsyncSession,
    *,
    user_id: UUID,
    filename: str | None,
    declared_type: str | None,
    data: bytes,
    title: str | None,
    max_bytes: int,
) -> tuple[Document, bool]:
    """Store a new document (pending) and its bytes; return it and whether it is new.

    The same bytes uploaded again by the same user return the existing document (queued
    again if it had failed); concurrent duplicates resolve to one row."""
    name = checked_filename(filename)
    content_type = detect_type(name, declared_type)
    if len(data) > max_bytes:
        raise TooLarge(f"the file is larger than the {max_bytes} byte limit")
    if not data:
        raise InvalidContent("the file is empty", code="empty_file")
    if content_type != PDF:
        decode_text(data)
    content_hash = hashlib.sha256(data).hexdigest()
    document = Document(
        user_id=user_id, filename=name, title=clean_title(title or "") or name, content_type=content_type,
        size_bytes=len(data), content_hash=content_hash,
    )  # fmt: skip
    created = await documents.create_document(session, document=document, data=data)
    if created is not None:
        return created, True
    existing = await documents.find_by_hash(session, user_id=user_id, content_hash=content_hash)
    if existing is None:  # pragma: no cover (the conflicting row is the caller's own, so visible)
        raise RuntimeError("duplicate document not found")
    if existing.status == "failed":  # uploading it again is how a user retries
        await documents.set_status(session, document_id=existing.id, status="pending")
        requeued = await documents.get_document(session, user_id=user_id, document_id=existing.id)
        return requeued or existing, True
    return existing, False


def checked_filename(filename: str | None) -> str:
    name = (filename or "").strip()
    if not name or len(name) > 255 or _UNSAFE_FILENAME.search(name) or has_invisible(name):
        raise InvalidContent(
            "the file name must be 1-255 characters without path separators, control or invisible characters",
            code="bad_filename",
        )
    return name
