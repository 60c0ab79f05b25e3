"""Process one uploaded document: load → clean → chunk → embed → store, as its owner."""

import logging
from uuid import UUID

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.auth.principal import Principal
from docent.db import documents
from docent.db.chunks import replace_chunks
from docent.db.session import acting_as, user_transaction
from docent.errors import BadInput, DocentError
from docent.ingestion.chunk import ChunkDraft, chunk_markdown
from docent.ingestion.clean import clean_text, clean_title
from docent.ingestion.load import load
from docent.retrieval.embeddings import Embedder

log = logging.getLogger(__name__)


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
        loaded = load(data, document.content_type)
        found = clean_title(loaded.title or "")
        title = found if found and document.title == document.filename else document.title
        drafts = _chunks(loaded.markdown, title)
        vectors = await embedder.embed_documents([draft.embedding_text() for draft in drafts])
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


def _chunks(markdown: str, title: str) -> list[ChunkDraft]:
    drafts = chunk_markdown(clean_text(markdown), title=title)
    if not drafts:
        raise BadInput("no text found in the document", code="no_text")
    return drafts


async def _fail(sessions: async_sessionmaker[AsyncSession], owner: Principal, document_id: UUID, error: str) -> None:
    async with user_transaction(sessions, owner) as session:
        await documents.set_status(session, document_id=document_id, status="failed", error=error)
