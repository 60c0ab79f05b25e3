"""Chunks gateway: bulk writes and the staleness query `docent reindex` uses.

Rows go in with one multi-row INSERT per document (arrays unnested server-side): COPY
would be faster still, but PostgreSQL refuses COPY FROM into tables with row-level
security for roles it applies to, and chunks are written as their owner.
"""

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from sqlalchemy import func, text
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db.models import Chunk

_HEADING_SEPARATOR = "\x1f"
_INSERT = text(
    "insert into public.chunks"
    " (document_id, user_id, ordinal, title, heading_path, content, embedding, embedding_model)"
    " select :document_id, :user_id, r.ordinal, :title, string_to_array(r.headings, chr(31)), r.content,"
    " r.embedding::vector, :model"
    " from unnest(cast(:ordinals as int[]), cast(:headings as text[]), cast(:contents as text[]),"
    " cast(:embeddings as text[])) as r(ordinal, headings, content, embedding)"
)


class ChunkRow(Protocol):
    @property
    def ordinal(self) -> int: ...
    @property
    def heading_path(self) -> Sequence[str]: ...
    @property
    def content(self) -> str: ...


def vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"


async def replace_chunks(
    session: AsyncSession,
    *,
    document_id: UUID,
    user_id: UUID,
    title: str,
    drafts: Sequence[ChunkRow],
    embeddings: Sequence[Sequence[float]],
    model: str,
) -> None:
    await session.exec(delete(Chunk).where(col(Chunk.document_id) == document_id))
    if not drafts:
        return
    await (await session.connection()).execute(
        _INSERT,
        {
            "document_id": document_id,
            "user_id": user_id,
            "title": title,
            "model": model,
            "ordinals": [draft.ordinal for draft in drafts],
            "headings": [_HEADING_SEPARATOR.join(draft.heading_path) for draft in drafts],
            "contents": [draft.content for draft in drafts],
            "embeddings": [vector_literal(vector) for vector in embeddings],
        },
    )


_RE_EMBED = text(
    "update public.chunks set embedding = cast(v.embedding as vector), embedding_model = :model"
    " from unnest(cast(:ids as uuid[]), cast(:embeddings as text[])) as v(id, embedding)"
    " where chunks.id = v.id"
)


async def stale_documents(session: AsyncSession, *, model: str) -> list[tuple[UUID, UUID]]:
    """(document id, owner) of every document with chunks embedded by another model.

    Run by the service's own login (`docent reindex`), across users."""
    statement = (
        select(Chunk.document_id, Chunk.user_id).where(col(Chunk.embedding_model).is_distinct_from(model)).distinct()
    )
    return [(row[0], row[1]) for row in (await session.exec(statement)).all()]


async def chunks_of(session: AsyncSession, *, document_id: UUID) -> list[Chunk]:
    statement = select(Chunk).where(Chunk.document_id == document_id).order_by(col(Chunk.ordinal))
    return list((await session.exec(statement)).all())


async def set_embeddings(
    session: AsyncSession, *, chunk_ids: Sequence[UUID], embeddings: Sequence[Sequence[float]], model: str
) -> None:
    parameters = {"ids": list(chunk_ids), "embeddings": [vector_literal(v) for v in embeddings], "model": model}
    await (await session.connection()).execute(_RE_EMBED, parameters)


async def section_chunks(
    session: AsyncSession, *, document_id: UUID, heading: str | None, start: int, limit: int
) -> list[Chunk]:
    """Consecutive chunks of one document: those under `heading` (any level, case-insensitive),
    else those from ordinal `start`."""
    statement = select(Chunk).where(col(Chunk.document_id) == document_id)
    if heading:
        pattern = "%" + heading.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(func.array_to_string(col(Chunk.heading_path), " \x1f ").ilike(pattern))
    else:
        statement = statement.where(col(Chunk.ordinal) >= start)
    return list((await session.exec(statement.order_by(col(Chunk.ordinal)).limit(limit))).all())
