"""Ingest files from disk for one user (`docent ingest`, `docent eval`), processing inline."""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db import documents
from docent.db.session import acting_as, user_transaction
from docent.errors import DocentError
from docent.ingestion.intake import accept_upload
from docent.ingestion.load import SUPPORTED_SUFFIXES
from docent.ingestion.pipeline import process_document
from docent.retrieval.embeddings import Embedder


@dataclass
class IngestSummary:
    ready: int = 0
    unchanged: int = 0
    chunks: int = 0
    seconds: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files as given, and the supported files under any folder, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        else:
            files.append(path)
    return files


async def ingest_files(
    sessions: async_sessionmaker[AsyncSession],
    embedder: Embedder,
    *,
    user_id: UUID,
    files: Sequence[Path],
    max_bytes: int,
    progress: Callable[[Path], None] = lambda _: None,
) -> IngestSummary:
    summary = IngestSummary()
    started = time.perf_counter()
    for path in files:
        try:
            async with user_transaction(sessions, acting_as(user_id)) as session:
                document, created = await accept_upload(
                    session, user_id=user_id, filename=path.name, declared_type=None,
                    data=path.read_bytes(), title=None, max_bytes=max_bytes,
                )  # fmt: skip
        except DocentError as exc:
            summary.failed.append((str(path), exc.detail))
        else:
            if not created and document.status == "ready":
                summary.unchanged += 1
            else:
                await process_document(sessions, embedder, document_id=document.id, user_id=user_id)
                await _tally(sessions, summary, user_id, document.id, path)
        progress(path)
    summary.seconds = time.perf_counter() - started
    return summary


async def _tally(
    sessions: async_sessionmaker[AsyncSession], summary: IngestSummary, user_id: UUID, document_id: UUID, path: Path
) -> None:
    async with user_transaction(sessions, acting_as(user_id)) as session:
        document = await documents.get_document(session, user_id=user_id, document_id=document_id)
    if document is not None and document.status == "ready":
        summary.ready += 1
        summary.chunks += document.chunk_count
    else:
        summary.failed.append((str(path), document.error or "failed" if document else "deleted"))
