"""The retriever: what `POST /search` and the agent's search tool call, as the caller."""

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.auth.principal import Principal
from docent.db.session import user_transaction
from docent.metrics import Metrics
from docent.retrieval.embeddings import Embedder
from docent.retrieval.search import Mode, SearchHit, search_chunks


class Retriever:
    def __init__(self, embedder: Embedder, metrics: Metrics | None = None) -> None:
        self._embedder = embedder
        self._metrics = metrics

    async def search(self, session: AsyncSession, *, query: str, k: int, mode: Mode = "hybrid") -> list[SearchHit]:
        """The caller's best chunks for `query`; `session` must be the caller's user transaction."""
        started = time.perf_counter()
        embedding = self.embedding_soon(query, mode)
        with _awaited_or_cancelled(embedding):
            return await self._search(session, embedding, started, query=query, k=k, mode=mode)

    async def search_as(
        self,
        sessions: async_sessionmaker[AsyncSession],
        principal: Principal,
        *,
        query: str,
        k: int,
        mode: Mode = "hybrid",
        embedding: asyncio.Future[list[float]] | None = None,
    ) -> list[SearchHit]:
        """`search` in a user transaction of its own, opened while the question embeds (or
        with `embedding`, the query's, from `embedding_soon`)."""
        started = time.perf_counter()
        if embedding is None:
            embedding = self.embedding_soon(query, mode)
        with _awaited_or_cancelled(embedding):
            async with user_transaction(sessions, principal) as session:
                return await self._search(session, embedding, started, query=query, k=k, mode=mode)

    def embedding_soon(self, query: str, mode: Mode = "hybrid") -> asyncio.Future[list[float]] | None:
        """The query's embedding, started now (in a thread) so the database work can overlap it."""
        return asyncio.ensure_future(self._embedder.embed_query(query)) if mode != "keyword" else None

    async def _search(
        self,
        session: AsyncSession,
        embedding: asyncio.Future[list[float]] | None,
        started: float,
        *,
        query: str,
        k: int,
        mode: Mode,
    ) -> list[SearchHit]:
        hits = await search_chunks(session, query=query, embedding=embedding, model=self._embedder.name, k=k, mode=mode)
        if self._metrics is not None:
            self._metrics.retrieval_seconds.labels(mode).observe(time.perf_counter() - started)
        return hits


@contextmanager
def _awaited_or_cancelled(embedding: asyncio.Future[list[float]] | None) -> Iterator[None]:
    """If the search fails before it needs the embedding, drop it."""
    try:
        yield
    finally:
        if embedding is not None:
            discard(embedding)


def discard(future: asyncio.Future[Any]) -> None:
    """Work no one will await (an embedding, a search): cancelled if still under way (an
    embedding's thread just finishes), else its error, if any, retrieved so that it is not
    reported as lost."""
    if not future.done():
        future.cancel()
    elif not future.cancelled():
        future.exception()
