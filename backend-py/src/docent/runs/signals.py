"""Signals about runs between replicas, through PostgreSQL's LISTEN/NOTIFY.

A run executes in the process that admitted it, but a cancel or a join may reach any
replica. A cancel for a run this process does not hold is sent as a notification
(`runs_db.request_cancel`), and the replica that holds the run cancels it; a replica waiting
for another's run hears of its end the same way (`runs_db.finish_run` announces it).
Notifications go out as the sender's transaction commits.

LISTEN needs a session connection: direct, or Supabase's session pooler, as the
checkpointer does. A notification sent while a listener reconnects is lost, so a waiter
also re-reads the run's row every RECHECK_SECONDS, and a cancel is also kept in the run's
row: once listening again, the listener cancels the runs held here whose row asks for it.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from uuid import UUID

import psycopg
from psycopg.conninfo import make_conninfo

from docent.db.runs import SIGNALS_CHANNEL, cancels_requested

logger = logging.getLogger(__name__)

RECHECK_SECONDS = 10.0  # a waiter's re-read of the run's row; the listener's liveness check
RECONNECT_SECONDS = 1.0
STARTUP_SECONDS = 2.0
# Named for pg_stat_activity; a connection that silently died (a network partition) is
# noticed by the operating system.
_CONNECTION: dict[str, str | int] = {
    "application_name": "docent-run-signals",
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "connect_timeout": 10,
}


class RunSignals:
    """This process's listener: cancels go to `on_cancel` (the run, and whether its thread is
    being deleted), ends to whoever is `watching`.
    `held` are the runs this process holds, for the cancels it missed while not listening."""

    def __init__(
        self, conninfo: str, *, on_cancel: Callable[[UUID, bool], None], held: Callable[[], list[UUID]]
    ) -> None:
        self._conninfo = make_conninfo(conninfo, **_CONNECTION)
        self._on_cancel = on_cancel
        self._held = held
        self._watchers: defaultdict[UUID, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while connected and listening

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="run-signals")
        with suppress(TimeoutError):  # a database that is up answers in milliseconds; else it retries
            async with asyncio.timeout(STARTUP_SECONDS):
                await self.listening.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def watched(self, run_id: UUID) -> bool:
        """Whether someone here is waiting for `run_id` to end."""
        return bool(self._watchers.get(run_id))

    @contextmanager
    def watching(self, run_id: UUID) -> Iterator[asyncio.Event]:
        """An event set when `run_id` is announced finished (register before checking its row)."""
        finished = asyncio.Event()
        self._watchers[run_id].add(finished)
        try:
            yield finished
        finally:
            self._watchers[run_id].discard(finished)
            if not self._watchers[run_id]:
                del self._watchers[run_id]

    async def _listen(self) -> None:
        delay = RECONNECT_SECONDS
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await conn.execute(f"listen {SIGNALS_CHANNEL}")
                    if held := self._held():  # cancels sent before this listener heard them
                        for run_id in await cancels_requested(conn, held):
                            self._on_cancel(run_id, False)  # the row keeps no reason
                    self.listening.set()
                    delay = RECONNECT_SECONDS
                    logger.info("run_signals_listening")
                    while True:
                        async for notification in conn.notifies(timeout=RECHECK_SECONDS):
                            self._dispatch(notification.payload)
                        async with asyncio.timeout(RECHECK_SECONDS):  # quiet a while: still there?
                            await conn.execute("select 1")
            except Exception as error:  # any failure: reconnect; the waiters re-read meanwhile
                if self.listening.is_set() or delay == RECONNECT_SECONDS:
                    logger.warning("run_signals_reconnecting", extra={"error": type(error).__name__})
            finally:
                self.listening.clear()
            await asyncio.sleep(delay)  # a retry delay while the database is away
            delay = min(delay * 2, RECHECK_SECONDS)

    def _dispatch(self, payload: str) -> None:
        signal, _, run = payload.partition(":")
        try:
            run_id = UUID(run)
        except ValueError:
            logger.warning("run_signal_ignored", extra={"payload": payload[:80]})
            return
        if signal in ("cancel", "delete"):
            self._on_cancel(run_id, signal == "delete")
        elif signal == "finished":
            for finished in self._watchers.get(run_id, ()):
                finished.set()
