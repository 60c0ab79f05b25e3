"""Documents gateway. Every function runs inside a user transaction, so RLS scopes it;
the explicit `user_id` filters are defence in depth, not the isolation itself."""

from uuid import UUID

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db.models import Document, DocumentSource

_UNFINISHED = ("pending", "processing")  # not searchable yet


async def find_by_hash(session: AsyncSession, *, user_id: UUID, content_hash: str) -> Document | None:
    statement = select(Document).where(Document.user_id == user_id, Document.content_hash == content_hash)
    return (await session.exec(statement)).one_or_none()


async def create_document(session: AsyncSession, *, document: Document, data: bytes) -> Document | None:
    """Insert the document and its bytes; None when the same user already has these bytes."""
    values = document.model_dump(exclude={"created_at", "updated_at"})
    statement = (
        insert(Document).values(**values).on_conflict_do_nothing(index_elements=["user_id", "content_hash"])
    ).returning(col(Document.id))
    if (await session.exec(statement)).scalar_one_or_none() is None:
        return None
    session.add(DocumentSource(document_id=document.id, user_id=document.user_id, data=data))
    await session.flush()
    return await get_document(session, user_id=document.user_id, document_id=document.id)


async def list_documents(session: AsyncSession, *, user_id: UUID) -> list[Document]:
    statement = select(Document).where(Document.user_id == user_id).order_by(col(Document.created_at).desc())
    return list((await session.exec(statement)).all())


async def ready_document_ids(session: AsyncSession, *, limit: int) -> list[UUID]:
    """The caller's ready documents, newest first (RLS scopes it)."""
    statement = (
        select(Document.id)
        .where(col(Document.status) == "ready")
        .order_by(col(Document.created_at).desc())
        .limit(limit)
    )
    return list((await session.exec(statement)).all())


async def get_document(session: AsyncSession, *, user_id: UUID, document_id: UUID) -> Document | None:
    statement = select(Document).where(Document.user_id == user_id, Document.id == document_id)
    return (await session.exec(statement)).one_or_none()


async def delete_document(session: AsyncSession, *, user_id: UUID, document_id: UUID) -> bool:
    statement = delete(Document).where(col(Document.user_id) == user_id, col(Document.id) == document_id)
    return bool((await session.exec(statement)).rowcount)


async def delete_all_documents(session: AsyncSession, *, user_id: UUID) -> int:
    """Every document of the user, with their sources and chunks (cascade); how many."""
    return int((await session.exec(delete(Document).where(col(Document.user_id) == user_id))).rowcount)


async def get_source(session: AsyncSession, *, document_id: UUID) -> bytes | None:
    statement = select(DocumentSource.data).where(DocumentSource.document_id == document_id)
    return (await session.exec(statement)).one_or_none()


async def set_status(
    session: AsyncSession,
    *,
    document_id: UUID,
    status: str,
    error: str | None = None,
    chunk_count: int = 0,
    title: str | None = None,
) -> None:
    values = {"status": status, "error": error, "chunk_count": chunk_count, "updated_at": func.now()}
    if title is not None:
        values["title"] = title
    await session.exec(update(Document).where(col(Document.id) == document_id).values(**values))


async def count_unfinished(session: AsyncSession) -> int:
    """How many of the caller's documents (RLS) are still pending or processing: not searchable yet."""
    statement = select(func.count()).select_from(Document).where(col(Document.status).in_(_UNFINISHED))
    return (await session.exec(statement)).one()


async def unfinished(session: AsyncSession) -> list[tuple[UUID, UUID]]:
    """(document id, owner) of every document still pending or processing, oldest first.

    Run by the service's own login at start-up (no user claims), to resume work a restart cut off."""
    statement = (
        select(Document.id, Document.user_id)
        .where(col(Document.status).in_(_UNFINISHED))
        .order_by(col(Document.created_at))
    )
    return [(row[0], row[1]) for row in (await session.exec(statement)).all()]
