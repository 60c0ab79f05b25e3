"""LangSmith: each run is one trace whose id is the run id; feedback goes to that trace.

One `langsmith.Client` per app (its background thread batches uploads); a fresh tracer per
run, because a tracer keeps the state of the runs it is recording.
"""

import asyncio
import logging
import time
from uuid import UUID

from langchain_core.tracers.langchain import LangChainTracer
from langsmith import Client
from langsmith.schemas import TracerSessionResult
from langsmith.utils import LangSmithError, get_host_url

logger = logging.getLogger(__name__)


PROJECT_RETRY_SECONDS = 60.0


class Tracing:
    def __init__(self, *, endpoint: str, api_key: str, project: str) -> None:
        self._client = Client(api_url=endpoint, api_key=api_key)
        self.project = project
        self._project: TracerSessionResult | None = None
        self._lookup: asyncio.Task[TracerSessionResult | None] | None = None
        self._failed_at = -PROJECT_RETRY_SECONDS

    def start(self) -> None:
        """Look the project up in the background, so that the first trace link is ready."""
        self._look_up()

    def tracer(self) -> LangChainTracer:
        return LangChainTracer(client=self._client, project_name=self.project)

    async def send_feedback(self, *, run_id: UUID, key: str, score: float | None, comment: str | None) -> bool:
        """Whether LangSmith took it; the feedback is stored in Docent's database either way."""
        try:
            project = await self.project_record()  # LangSmith finds a run's feedback through its project
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

    def run_url_template(self) -> str | None:
        """A run's page in LangSmith, with `{run_id}` to fill in (the form `Client.get_run_url`
        builds; the trace id is the run id). None until LangSmith has told the project's ids:
        never waited for, since the page's public configuration route asks."""
        project = self._project
        if project is None:
            self._look_up()
            return None
        host = get_host_url(None, self._client.api_url)
        return f"{host}/o/{project.tenant_id}/projects/p/{project.id}/r/{{run_id}}?poll=true"

    async def project_record(self) -> TracerSessionResult:
        """The project, waiting for the lookup in flight; LangSmithError while it cannot be had."""
        project = self._project or await asyncio.shield(self._look_up())
        if project is None:
            raise LangSmithError(f"LangSmith did not return the project {self.project}")
        return project

    def _look_up(self) -> "asyncio.Task[TracerSessionResult | None]":
        """The lookup in flight or last done; a new one unless the last failed under a minute
        ago, so that anonymous page loads cannot pile up calls to a LangSmith that is down."""
        retry = time.monotonic() - self._failed_at >= PROJECT_RETRY_SECONDS
        if self._lookup is None or (self._lookup.done() and self._project is None and retry):
            self._lookup = asyncio.create_task(self._read_project(), name="langsmith-project")
        return self._lookup

    async def _read_project(self) -> TracerSessionResult | None:
        try:
            self._project = await asyncio.to_thread(self._client.read_project, project_name=self.project)
        except (LangSmithError, OSError) as error:
            self._failed_at = time.monotonic()
            logger.warning("langsmith_project_unavailable", extra={"project": self.project, "error": str(error)})
        return self._project

    async def flush(self) -> None:
        """Upload everything queued (at shutdown, and in tests)."""
        await asyncio.to_thread(self._client.flush)

    async def close(self) -> None:
        if self._lookup is not None:
            self._lookup.cancel()
            await asyncio.gather(self._lookup, return_exceptions=True)
        await self.flush()
        await asyncio.to_thread(self._client.cleanup)
