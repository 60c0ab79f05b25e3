"""Re-embed chunks that another embedding model produced (after EMBEDDINGS changes).

Until a document is re-embedded, vector search skips its chunks (it only compares
vectors of the configured model), and keyword search still finds them.
"""

from collections.abc import Callable
from uuid import UUID

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db.chunks import chunks_of, set_embeddings, stale_documents
from docent.db.session import acting_as, user_transaction
from docent.ingestion.chunk import ChunkDraft
from docent.retrieval.embeddings import Embedder


async def reindex(
    sessions: async_sessionmaker[AsyncSession],
    embedder: Embedder,
    *,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> tuple[int, int]:
    """Re-embed every stale document; return (documents, chunks) re-embedded."""
    async with sessions() as session:
        stale = await stale_documents(session, model=embedder.name)
    chunk_total = 0
    for done, (document_id, user_id) in enumerate(stale, 1):
        chunk_total += await _reembed(sessions, embedder, document_id, user_id)
        progress(done, len(stale))
    return len(stale), chunk_total


async def _reembed(
    sessions: async_sessionmaker[AsyncSession], embedder: Embedder, document_id: UUID, user_id: UUID
) -> int:
    async with user_transaction(sessions, acting_as(user_id)) as session:
        chunks = await chunks_of(session, document_id=document_id)
    texts = [ChunkDraft(c.ordinal, c.title, tuple(c.heading_path), c.content).embedding_text() for c in chunks]
    vectors = await embedder.embed_documents(texts)
    async with user_transaction(sessions, acting_as(user_id)) as session:
        await set_embeddings(session, chunk_ids=[c.id for c in chunks], embeddings=vectors, model=embedder.name)
    return len(chunks)
