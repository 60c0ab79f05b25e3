"""Runs: admitted in the caller's transaction, executed as tasks that outlive their request.

A run holds its thread through a lease (`lease`), so two runs never write one thread, across
replicas too; a crashed replica's orphaned runs are marked failed by any replica's next
sweep (`orphans`). A second run on a busy thread is
rejected (`reject`, the default) or, with `enqueue` / `interrupt`, waits for (or cancels)
the run in flight, in this process or another: a cancel reaches another process's run as a
signal, and the end of a run is announced to all (`signals`).

The graph runs in a task of its own: a client that disconnects stops listening, not the
run, and the answer still reaches the thread. Listeners get events through `LiveRun`.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, cast
from uuid import UUID

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db import documents as documents_db
from docent.db import runs as runs_db
from docent.db import threads as threads_db
from docent.db.checkpoints import Checkpoints
from docent.db.engine import retrying_while_unavailable
from docent.db.models import Run
from docent.db.session import acting_as, service_transaction, user_transaction
from docent.db.threads import ThreadStatus
from docent.errors import Conflict, NotFound
from docent.graph import GRAPH_ID, AgentState, RunContext
from docent.graph.build import Graph
from docent.graph.citations import shorten
from docent.graph.tools import question_query, search_question_soon
from docent.metrics import Metrics
from docent.retrieval.retriever import Retriever, discard
from docent.runs import failures
from docent.runs.lease import LEASE_SECONDS, holding
from docent.runs.limits import check_limits
from docent.runs.live import LiveRun
from docent.runs.orphans import OrphanedRuns
from docent.runs.signals import RECHECK_SECONDS, RunSignals
from docent.runs.tracing import Tracing
from docent.settings import Settings

logger = logging.getLogger(__name__)

StreamMode = Literal["values", "updates", "messages-tuple"]
GraphMode = Literal["values", "updates", "messages"]
Strategy = Literal["reject", "enqueue", "interrupt"]
Durability = Literal["sync", "async", "exit"]
# When a run's checkpoints are written (LangGraph's `durability`): by default once, as the
# run ends, however it ends (an answer, an error, a cancel, a timeout, a shutdown). Only a
# process that dies mid-run loses that turn, which its run then reports as failed; writing
# after every step as well ("async", the Agent Server's default) cost about 10 ms a turn.
# A client may ask for "async" or "sync" per run.
DEFAULT_DURABILITY: Durability = "exit"
BUSY = "Thread is already running a task. Wait for it to finish or choose a different multitask strategy."
_GRAPH_MODES = {"values": "values", "updates": "updates", "messages-tuple": "messages"}
TITLE_CHARS = 80
RECORD_RETRY_SECONDS = 20.0  # a run that ends while the database restarts is recorded once it is back
RECURSION_LIMIT = 40
THREAD_DELETED = {"error": "thread_deleted", "message": "The thread was deleted while the run was in flight."}


@dataclass(frozen=True)
class RunSpec:
    """A validated run request."""

    thread_id: UUID
    question: str  # the user's message, already checked
    stream_modes: tuple[StreamMode, ...] = ("values",)
    strategy: Strategy = "reject"
    metadata: dict[str, Any] = field(default_factory=dict)
    durability: Durability = DEFAULT_DURABILITY


@dataclass
class _Outcome:
    status: runs_db.RunStatus
    error: str | None = None  # its kind
    message: str | None = None


class RunManager:
    def __init__(
        self,
        *,
        graph: Graph,
        checkpoints: Checkpoints,
        sessions: async_sessionmaker[AsyncSession],
        retriever: Retriever,
        settings: Settings,
        metrics: Metrics,
        tracing: Tracing | None,
        signals_conninfo: str,
    ) -> None:
        self._graph = graph
        self._checkpoints = checkpoints
        self._sessions = sessions
        self._retriever = retriever
        self._settings = settings
        self._metrics = metrics
        self._tracing = tracing
        self._lease = timedelta(seconds=LEASE_SECONDS)
        self._by_run: dict[UUID, LiveRun] = {}  # in flight in this process, until recorded
        self.orphans = OrphanedRuns(sessions=sessions, lease=self._lease, alive=lambda: list(self._by_run))
        self.signals = RunSignals(signals_conninfo, on_cancel=self._cancel_here, held=lambda: list(self._by_run))

    async def admit(self, session: AsyncSession, *, user_id: UUID, spec: RunSpec, run_id: UUID) -> tuple[Run, LiveRun]:
        """Check the thread, the caller's limits and the thread's availability, and record the
        run, in the caller's transaction. Listen to the returned run at once, and `launch` it
        once that transaction has committed."""
        await self._checkpoints.ensure()
        embedding = self._question_embedding(spec.question)
        try:
            run, live = await self._admit(session, user_id=user_id, spec=spec, run_id=run_id)
        except BaseException:
            if embedding is not None:
                discard(embedding)
            raise
        live.embedding = embedding
        return run, live

    async def _admit(self, session: AsyncSession, *, user_id: UUID, spec: RunSpec, run_id: UUID) -> tuple[Run, LiveRun]:
        waits = spec.strategy != "reject" and bool(self._on_thread(spec.thread_id))
        run = Run(
            id=run_id,
            thread_id=spec.thread_id,
            user_id=user_id,
            assistant_id=GRAPH_ID,
            status="pending" if waits else "running",
            multitask_strategy=spec.strategy,
            metadata_=spec.metadata,
        )
        title = shorten(spec.question, TITLE_CHARS)
        admission = await runs_db.admit_run(session, run=run, title=title, lease=self._lease, queued=waits)
        if admission == "busy" and spec.strategy != "reject":
            # Another process's run holds the thread: wait in line behind it (`_wait_turn`).
            waits, run.status = True, "pending"
            admission = await runs_db.admit_run(session, run=run, title=title, lease=self._lease, queued=True)
        if admission == "not_found":
            raise NotFound("Thread or assistant not found.", code="thread_not_found")
        if admission == "busy":
            raise Conflict(BUSY, code="thread_busy")
        # A 429 rolls the admission back with the transaction.
        await check_limits(session, self._settings, user_id=user_id)
        return run, LiveRun(run_id=run.id, thread_id=run.thread_id, user_id=user_id, queued=waits)

    def launch(self, live: LiveRun, spec: RunSpec) -> None:
        if live.queued:
            live.waits_for = self._on_thread(live.thread_id)
            if spec.strategy == "interrupt":
                for other in live.waits_for:
                    other.cancel()
        self._by_run[live.run_id] = live
        live.task = asyncio.create_task(self._execute(live, spec), name=f"run-{live.run_id}")
        live.task.add_done_callback(lambda _: self._forget(live))

    def live(self, run_id: UUID) -> LiveRun | None:
        return self._by_run.get(run_id)

    async def cancel(self, session: AsyncSession, run_id: UUID, *, user_id: UUID) -> LiveRun | None:
        """Cancel `user_id`'s unfinished run: here if this process holds it (returned), else by
        a signal to the replica that does, sent as `session` (theirs: RLS) commits."""
        live = self._by_run.get(run_id)
        if live is not None and live.user_id == user_id:
            live.cancel()
            return live
        await runs_db.request_cancel(session, run_id=run_id)
        return None

    def _cancel_here(self, run_id: UUID, thread_deleted: bool) -> None:
        live = self._by_run.get(run_id)
        if live is not None:
            live.cancel(error=THREAD_DELETED if thread_deleted else None)

    async def until_finished(self, user_id: UUID, run_id: UUID, *, cancelling: bool = False) -> AsyncIterator[None]:
        """Wait for a run of `user_id`'s to end, yielding every RECHECK_SECONDS meanwhile (time
        for a keep-alive). Holds no connection while it waits; ends at once if the run has
        ended or is gone. An orphaned run ends when a sweep marks it failed. `cancelling`
        sends the cancel again at each re-read, in case its process missed it."""
        with self.signals.watching(run_id) as finished:
            first = True
            while True:
                async with user_transaction(self._sessions, acting_as(user_id)) as session:
                    status = await runs_db.run_status(session, run_id=run_id)
                    if cancelling and not first and status not in runs_db.FINISHED:
                        await runs_db.request_cancel(session, run_id=run_id)
                first = False
                if status is None or status in runs_db.FINISHED:
                    return
                with suppress(TimeoutError):
                    async with asyncio.timeout(RECHECK_SECONDS):
                        await finished.wait()
                finished.clear()
                yield

    async def cancel_runs_to_delete(self, user_id: UUID, *, thread_id: UUID | None = None) -> bool:
        """Cancel the user's runs (on one thread, or all) because their threads are being
        deleted, and wait until each has recorded its end (their clients are told why, as an
        error): this process's at once, other processes' through a signal, for up to
        RECHECK_SECONDS (a run whose process died and whose lease has lapsed is left to the
        sweep).
        Whether there were any. Call it holding no pooled connection: each run needs one to
        record its end."""
        runs = [
            live for live in self._by_run.values() if live.user_id == user_id and thread_id in (None, live.thread_id)
        ]
        for live in runs:
            live.cancel(error=THREAD_DELETED)
        async with user_transaction(self._sessions, acting_as(user_id)) as session:
            elsewhere = [
                run_id
                for run_id in await runs_db.held_run_ids(session, thread_id=thread_id)
                if run_id not in self._by_run
            ]
            for run_id in elsewhere:
                await runs_db.request_cancel(session, run_id=run_id, thread_deleted=True)
        for live in runs:
            await live.done.wait()
        with suppress(TimeoutError):
            async with asyncio.timeout(RECHECK_SECONDS):
                for run_id in elsewhere:
                    async for _ in self.until_finished(user_id, run_id):
                        pass
        return bool(runs or elsewhere)

    def _on_thread(self, thread_id: UUID) -> list[LiveRun]:
        return [live for live in self._by_run.values() if live.thread_id == thread_id]

    async def start(self) -> None:
        await self.signals.start()
        await self.orphans.start()

    async def stop(self, *, grace: float = 0) -> None:
        """Let the runs in flight finish for up to `grace` seconds, then cancel the rest; wait
        until each has recorded its outcome."""
        await self.orphans.stop()
        tasks = [live.task for live in self._by_run.values() if live.task is not None]
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        runs = list(self._by_run.values())
        for live in runs:
            live.cancel()
        await asyncio.gather(*(live.task for live in runs if live.task is not None), return_exceptions=True)
        await self.signals.stop()  # last: another replica's cancel still reaches runs in their grace

    async def _execute(self, live: LiveRun, spec: RunSpec) -> None:
        started = time.perf_counter()
        tokens = [0, 0]
        live.publish("metadata", {"run_id": str(live.run_id), "attempt": 1})
        try:
            live.begin()  # ends here if cancelled before its task began (a shutdown just after its launch)
            if live.queued:
                await self._wait_turn(live, spec.strategy)
            async with (
                asyncio.timeout(self._settings.run_timeout_seconds) as deadline,
                holding(live, self._sessions, self._lease),
            ):
                live.deadline = deadline
                await self._stream(live, spec, tokens, started)
            outcome = _Outcome("success")
        except asyncio.CancelledError:
            # The user's cancel, or their thread's deletion (its clients are still told why), is an
            # interruption; a cancel for any other reason (a lost lease) is the run's failure.
            if live.error is None or live.error == THREAD_DELETED:
                outcome = _Outcome("interrupted")
            else:
                outcome = _Outcome("error", **live.error)
        except TimeoutError:
            limit = self._settings.run_timeout_seconds
            message = f"The run took longer than {limit:g} s and was stopped. {failures.RETRY_HINT}"
            outcome = _Outcome("timeout", "run_timeout", message)
        except Exception as error:
            kind, message = failures.describe(error)
            outcome = _Outcome("error", kind, message)
        live.finishing = True  # from here on, a cancel must not cut the bookkeeping short
        if outcome.message is not None and not await self._question_kept(live):
            outcome.message = outcome.message.replace(failures.RETRY_HINT, failures.NOT_SAVED)
        await self._finish(live, outcome, tokens, time.perf_counter() - started)

    async def _wait_turn(self, live: LiveRun, strategy: Strategy) -> None:
        """Take the thread once the runs ahead of this one have ended: this process's first,
        then whichever run holds its lease (another process's, with `interrupt` cancelled)."""
        for earlier in live.waits_for:  # all of them: a cancelled waiter ends before the run it waited for
            await earlier.done.wait()
        live.waits_for = []  # let the finished runs be collected
        cancelled: set[UUID] = set()
        waited_for: UUID | None = None
        while True:
            async with user_transaction(self._sessions, acting_as(live.user_id)) as session:
                if await threads_db.acquire_thread(
                    session, thread_id=live.thread_id, run_id=live.run_id, lease=self._lease
                ):
                    break
                lease = await threads_db.lease(session, thread_id=live.thread_id)
                if lease is None:
                    raise NotFound("The thread was deleted while the run waited for it.", code="thread_not_found")
                if lease.holder is not None and strategy == "interrupt" and lease.holder not in cancelled:
                    await self.cancel(session, lease.holder, user_id=live.user_id)
                    cancelled.add(lease.holder)
            if lease.holder is None or lease.holder == waited_for:
                # Held by nothing that will release it (a run whose process died, or one not
                # the caller's), or just released: the lease lapses by itself within this.
                await asyncio.sleep(min(max(lease.seconds_left, 0.1), RECHECK_SECONDS))  # a lease's rest
                continue
            cancelling = lease.holder in cancelled
            async for _ in self.until_finished(live.user_id, lease.holder, cancelling=cancelling):
                pass
            waited_for = lease.holder
        async with self._service() as session:
            started = await runs_db.start_queued_run(session, run_id=live.run_id)
            if not started:  # a sweep took it for dead meanwhile: give the thread back
                await threads_db.release_lease(session, thread_id=live.thread_id, run_id=live.run_id)
        if not started:
            raise Conflict(BUSY, code="thread_busy")

    async def _stream(self, live: LiveRun, spec: RunSpec, tokens: list[int], started: float) -> None:
        requested = {_GRAPH_MODES[mode] for mode in spec.stream_modes}
        context = RunContext(
            user_id=live.user_id, sessions=self._sessions, retriever=self._retriever, on_answer=live.answered
        )
        if self._settings.search_first:
            search_question_soon(spec.question, context, embedding=live.embedding)  # overlaps loading the thread
        first_token = True
        modes = cast(list[GraphMode], sorted(requested | {"values", "updates"}))
        chunk: Any
        try:
            stream = self._graph.astream(
                AgentState(messages=[HumanMessage(spec.question, id=str(live.run_id))]),
                await self._config(live, spec),
                context=context,
                stream_mode=modes,
                durability=spec.durability,
            )
            async for mode, chunk in stream:
                if mode == "values":
                    live.values = chunk
                elif mode == "updates":
                    _count_tokens(chunk, tokens)
                elif first_token and chunk[0].content:
                    first_token = False
                    self._metrics.first_token_seconds.observe(time.perf_counter() - started)
                if mode in requested:
                    live.publish(mode, chunk)  # encoded by each listener, if any
        finally:
            for unused in context.early_searches.values():
                discard(unused)

    def _question_embedding(self, question: str) -> asyncio.Future[list[float]] | None:
        """The first search's embedding, started as the run is admitted: it overlaps the
        admission's round trips, and the search the loading of the thread."""
        query = question_query(question)
        return self._retriever.embedding_soon(query) if self._settings.search_first and query else None

    async def _question_kept(self, live: LiveRun) -> bool:
        """Whether a failed run's question is in its thread (its id is the run's), so that a
        retry needs no copy. The checkpoint that holds it is written as the run ends, which a
        run that never started, or a database outage, prevents."""
        try:
            snapshot = await self._graph.aget_state({"configurable": {"thread_id": str(live.thread_id)}})
        except Exception:  # unreadable (the database is away, say): then it cannot be promised
            logger.warning("question_kept_unknown", extra={"run_id": str(live.run_id)}, exc_info=True)
            return False
        return any(message.id == str(live.run_id) for message in snapshot.values.get("messages", ()))

    async def _config(self, live: LiveRun, spec: RunSpec) -> RunnableConfig:
        config = RunnableConfig(
            configurable={"thread_id": str(live.thread_id)},
            recursion_limit=RECURSION_LIMIT,
            run_id=live.run_id,
            run_name=GRAPH_ID,
            metadata={
                **spec.metadata,
                "user_id": str(live.user_id),
                "thread_id": str(live.thread_id),
                "run_id": str(live.run_id),  # as the Agent Server's; the saver keys what it remembers by it
            },
        )
        if self._tracing is not None:
            async with user_transaction(self._sessions, acting_as(live.user_id)) as session:
                document_ids = await documents_db.ready_document_ids(session, limit=100)
            config["metadata"] = {**config["metadata"], "document_ids": [str(i) for i in document_ids]}
            config["callbacks"] = [self._tracing.tracer()]
        return config

    async def _finish(self, live: LiveRun, outcome: _Outcome, tokens: list[int], seconds: float) -> None:
        # The thread's next load takes a successful run's messages as they are (a failed run
        # may have stopped between its last event and its last checkpoint).
        remembered = {"messages": live.values["messages"]} if outcome.status == "success" and live.values else None
        self._checkpoints.saver.run_ended(run_id=str(live.run_id), thread_id=str(live.thread_id), values=remembered)
        metrics = self._metrics
        metrics.run_seconds.labels(outcome.status).observe(seconds)
        metrics.tokens.labels("input").inc(tokens[0])
        metrics.tokens.labels("output").inc(tokens[1])
        if outcome.error is not None:
            metrics.errors.labels(outcome.error).inc()
            live.error = {"error": outcome.error, "message": outcome.message or ""}
            logger.warning("run_failed", extra={"run_id": str(live.run_id), "error": outcome.error})
        try:
            await retrying_while_unavailable(lambda: self._record(live, outcome, tokens), within=RECORD_RETRY_SECONDS)
        except Exception:
            # The lease lapses by itself, and the periodic sweep marks the run failed.
            logger.exception("could not record the end of run %s", live.run_id)
            metrics.errors.labels("run_bookkeeping").inc()
        if live.error is not None:
            live.publish("error", live.error)
        self._forget(live)

    async def _record(self, live: LiveRun, outcome: _Outcome, tokens: list[int]) -> None:
        # Released only if this run holds the thread (`finish_run` checks): a queued run may
        # have taken it just as a cancel landed.
        release: ThreadStatus = "error" if outcome.status in {"error", "timeout"} else "idle"
        async with self._service() as session:
            await runs_db.finish_run(
                session,
                run_id=live.run_id,
                status=outcome.status,
                error_kind=outcome.error,
                error=outcome.message,
                input_tokens=tokens[0],
                output_tokens=tokens[1],
                release=release,
            )

    def _forget(self, live: LiveRun) -> None:
        """Close the run's listeners and drop it (also the task's done callback: whatever ended it)."""
        if live.embedding is not None:
            discard(live.embedding)
        live.close()
        self._by_run.pop(live.run_id, None)

    def _service(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A transaction on the service's own login: bookkeeping users may not write."""
        return service_transaction(self._sessions)


def _count_tokens(update: dict[str, Any], tokens: list[int]) -> None:
    for node_update in update.values():
        if not isinstance(node_update, dict):
            continue
        for message in node_update.get("messages", ()):
            if isinstance(message, AIMessage) and message.usage_metadata:
                tokens[0] += message.usage_metadata["input_tokens"]
                tokens[1] += message.usage_metadata["output_tokens"]
