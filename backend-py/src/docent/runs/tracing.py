"""LangSmith: each run is one trace whose id is the run id; feedback goes to that trace.

One `langsmith.Client` per app (its background thread batches uploads); a fresh tracer per
run, because a tracer keeps the state of the runs it is recording.
"""

import asyncio
import logging
from typing import Any
from uuid import UUID

from langchain_core.tracers.langchain import LangChainTracer
from langsmith import Client
from langsmith.utils import LangSmithError

logger = logging.getLogger(__name__)


class Tracing:
    def __init__(self, *, endpoint: str, api_key: str, project: str) -> None:
        self._client = Client(api_url=endpoint, api_key=api_key)
        self.project = project

    def tracer(self) -> LangChainTracer:
        return LangChainTracer(client=self._client, project_name=self.project)

    async def send_feedback(self, *, run_id: UUID, key: str, score: float | None, comment: str | None) -> bool:
        """Whether LangSmith took it; the feedback is stored in Docent's database either way."""
        try:
            await asyncio.to_thread(
                self._client.create_feedback,
                run_id,
                key,
                score=score,
                comment=comment,
                trace_id=run_id,
                stop_after_attempt=2,
            )
        except (LangSmithError, OSError):
            logger.warning("LangSmith refused feedback on run %s", run_id, exc_info=True)
            return False
        return True

    async def flush(self) -> None:
        """Upload everything queued (at shutdown, and in tests)."""
        await asyncio.to_thread(self._client.flush)

    async def close(self) -> None:
        await self.flush()
        await asyncio.to_thread(self._client.cleanup)


def trace_metadata(*, user_id: UUID, thread_id: UUID, document_ids: list[str], **extra: Any) -> dict[str, Any]:
    return {"user_id": str(user_id), "thread_id": str(thread_id), "document_ids": document_ids, **extra}
