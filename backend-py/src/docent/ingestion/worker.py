"""Background ingestion inside the service: no external queue.

Documents are processed one at a time (embedding saturates both cores), in upload order.
At start-up, documents left pending or processing by a restart are queued again, so none
stays `processing` forever; a failure marks the document `failed` with a reason.
"""

import asyncio
import logging
from uuid import UUID

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db.documents import unfinished
from docent.ingestion.pipeline import process_document
from docent.retrieval.embeddings import Embedder

log = logging.getLogger(__name__)


class IngestionWorker:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], embedder: Embedder) -> None:
        self._sessions = sessions
        self._embedder = embedder
        self._queue: asyncio.Queue[tuple[UUID, UUID]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def submit(self, document_id: UUID, user_id: UUID) -> None:
        self._queue.put_nowait((document_id, user_id))

    async def start(self) -> None:
        try:
            async with self._sessions() as session:
                for document_id, user_id in await unfinished(session):
                    self.submit(document_id, user_id)
        except SQLAlchemyError:
            # Unmigrated or unreachable: /health/ready says so; nothing to resume from here.
            log.warning("ingestion_resume_skipped", exc_info=True)
        log.info("ingestion_worker_started", extra={"resumed": self._queue.qsize()})
        self._task = asyncio.create_task(self._run(), name="ingestion-worker")

    async def join(self) -> None:
        """Wait until everything submitted so far is processed (CLI ingestion, tests)."""
        await self._queue.join()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            document_id, user_id = await self._queue.get()
            try:
                await process_document(self._sessions, self._embedder, document_id=document_id, user_id=user_id)
            except Exception:  # the worker must outlive any one document
                log.exception("ingestion_worker_error", extra={"document_id": str(document_id)})
            finally:
                self._queue.task_done()
