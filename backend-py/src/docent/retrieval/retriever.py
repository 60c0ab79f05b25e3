"""The retriever: what `POST /search` and the agent's search tool call, as the caller."""

import time

from sqlmodel.ext.asyncio.session import AsyncSession

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
        embedding = await self._embedder.embed_query(query) if mode != "keyword" else None
        hits = await search_chunks(session, query=query, embedding=embedding, model=self._embedder.name, k=k, mode=mode)
        if self._metrics is not None:
            self._metrics.retrieval_seconds.labels(mode).observe(time.perf_counter() - started)
        return hits
