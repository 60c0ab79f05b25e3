"""Process one uploaded document: load → clean → chunk → embed → store, as its owner."""

import asyncio
import logging
from uuid import UUID

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.auth.principal import Principal
from docent.db import documents
from docent.db.chunks import replace_chunks
from docent.db.models import Document
from docent.db.session import acting_as, user_transaction
from docent.errors import BadInput, DocentError
from docent.ingestion.chunk import ChunkDraft, chunk_markdown
from docent.ingestion.clean import clean_text, clean_title
from docent.ingestion.load import load
from docent.retrieval.embeddings import Embedder

log = logging.getLogger(__name__)

# Chunks per embedding call. Between calls the document is looked up again, so one deleted
# while it is processed stops within a call's time (about a second), not after the whole
# file; a shutdown, which cancels at the next call, waits no longer than that either.
EMBED_BATCH = 64


async def process_document(
    sessions: async_sessionmaker[AsyncSession], embedder: Embedder, *, document_id: UUID, user_id: UUID
) -> None:
    owner = acting_as(user_id)
    async with user_transaction(sessions, owner) as session:
        document = await documents.get_document(session, user_id=user_id, document_id=document_id)
        data = await documents.get_source(session, document_id=document_id)
        if document is None or data is None:
            return  # deleted meanwhile
        await documents.set_status(session, document_id=document_id, status="processing")
    try:
        # Parsing, cleaning and chunking are CPU work (seconds for a large file): in a thread,
        # so that the event loop still gets its turns, and with them runs, leases and probes.
        title, drafts = await asyncio.to_thread(_prepare, data, document)
        vectors = await _embed(sessions, embedder, owner, document_id, drafts)
        if vectors is None:
            log.info("document_deleted_while_processing", extra={"document_id": str(document_id)})
            return
        async with user_transaction(sessions, owner) as session:
            await replace_chunks(
                session, document_id=document_id, user_id=user_id, title=title,
                drafts=drafts, embeddings=vectors, model=embedder.name,
            )  # fmt: skip
            await documents.set_status(
                session, document_id=document_id, status="ready", chunk_count=len(drafts), title=title
            )
    except DocentError as exc:
        await _fail(sessions, owner, document_id, exc.detail)
    except Exception as exc:  # a job boundary: whatever broke, the document must not stay `processing`
        log.exception("ingestion_failed", extra={"document_id": str(document_id)})
        await _fail(sessions, owner, document_id, f"processing failed ({type(exc).__name__}); upload it again to retry")
    else:
        log.info("document_ready", extra={"document_id": str(document_id), "chunks": len(drafts)})


async def _embed(
    sessions: async_sessionmaker[AsyncSession],
    embedder: Embedder,
    owner: Principal,
    document_id: UUID,
    drafts: list[ChunkDraft],
) -> list[list[float]] | None:
    """The drafts' vectors, or None if the document was deleted meanwhile."""
    vectors: list[list[float]] = []
    for start in range(0, len(drafts), EMBED_BATCH):
        if start and not await _still_there(sessions, owner, document_id):
            return None
        batch = drafts[start : start + EMBED_BATCH]
        vectors += await embedder.embed_documents([draft.embedding_text() for draft in batch])
    return vectors


async def _still_there(sessions: async_sessionmaker[AsyncSession], owner: Principal, document_id: UUID) -> bool:
    async with user_transaction(sessions, owner) as session:
        return await documents.get_document(session, user_id=owner.user_id, document_id=document_id) is not None


def _prepare(data: bytes, document: Document) -> tuple[str, list[ChunkDraft]]:
    """The document's title (found in it, unless the user gave one) and its chunks."""
    loaded = load(data, document.content_type)
    found = clean_title(loaded.title or "")
    title = found if found and document.title == document.filename else document.title
    drafts = chunk_markdown(clean_text(loaded.markdown), title=title)
    if not drafts:
        raise BadInput("no text found in the document", code="no_text")
    return title, drafts


async def _fail(sessions: async_sessionmaker[AsyncSession], owner: Principal, document_id: UUID, error: str) -> None:
    async with user_transaction(sessions, owner) as session:
        await documents.set_status(session, document_id=document_id, status="failed", error=error)
