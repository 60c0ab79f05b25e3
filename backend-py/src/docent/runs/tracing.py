"""LangSmith: each run is one trace whose id is the run id; feedback goes to that trace.

One `langsmith.Client` per app (its background thread batches uploads); a fresh tracer per
run, because a tracer keeps the state of the runs it is recording.
"""

import asyncio
import logging
from uuid import UUID

from langchain_core.tracers.langchain import LangChainTracer
from langsmith import Client
from langsmith.schemas import TracerSessionResult
from langsmith.utils import LangSmithError, get_host_url

logger = logging.getLogger(__name__)


class Tracing:
    def __init__(self, *, endpoint: str, api_key: str, project: str) -> None:
        self._client = Client(api_url=endpoint, api_key=api_key)
        self.project = project
        self._project: TracerSessionResult | None = None

    def tracer(self) -> LangChainTracer:
        return LangChainTracer(client=self._client, project_name=self.project)

    async def send_feedback(self, *, run_id: UUID, key: str, score: float | None, comment: str | None) -> bool:
        """Whether LangSmith took it; the feedback is stored in Docent's database either way."""
        try:
            project = await self._read_project()  # LangSmith finds a run's feedback through its project
            await asyncio.to_thread(
                self._client.create_feedback,
                run_id,
                key,
                score=score,
                comment=comment,
                trace_id=run_id,
                session_id=project.id,
                stop_after_attempt=2,
            )
        except (LangSmithError, OSError):
            logger.warning("LangSmith refused feedback on run %s", run_id, exc_info=True)
            return False
        return True

    async def run_url_template(self) -> str | None:
        """A run's page in LangSmith, with `{run_id}` to fill in (the form `Client.get_run_url`
        builds; the trace id is the run id); None while LangSmith cannot be reached."""
        try:
            project = await self._read_project()
        except (LangSmithError, OSError):
            logger.warning("LangSmith did not return the project %s", self.project, exc_info=True)
            return None
        host = get_host_url(None, self._client.api_url)
        return f"{host}/o/{project.tenant_id}/projects/p/{project.id}/r/{{run_id}}?poll=true"

    async def _read_project(self) -> TracerSessionResult:
        if self._project is None:
            project: TracerSessionResult = await asyncio.to_thread(self._client.read_project, project_name=self.project)
            self._project = project
            return project
        return self._project

    async def flush(self) -> None:
        """Upload everything queued (at shutdown, and in tests)."""
        await asyncio.to_thread(self._client.flush)

    async def close(self) -> None:
        await self.flush()
        await asyncio.to_thread(self._client.cleanup)
