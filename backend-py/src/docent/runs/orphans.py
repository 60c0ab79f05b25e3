"""Runs no process will finish: their process died mid-run, so nothing will record their
end. Each replica looks for them at start-up and then every few seconds (a process
restarted at once comes back before its runs' leases have lapsed), and marks them failed
with a message; their threads' lapsed leases are freed."""

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db import runs as runs_db
from docent.db.session import service_transaction

logger = logging.getLogger(__name__)
# A run's checkpoint is written as it ends (unless it asked for every step), so the question
# of a run whose process died is usually not in the thread.
ORPHANED = "The service stopped during this run. If your message is missing from the conversation, send it again."
PRUNE_EVERY_SECONDS = 3600.0  # the rate limit's run starts older than a day


class OrphanedRuns:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        lease: timedelta,
        alive: Callable[[], list[UUID]],
    ) -> None:
        self._sessions = sessions
        self._lease = lease
        self._alive = alive  # this process's runs: never orphans, whatever their lease says
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.sweep(prune=True)
        self._task = asyncio.create_task(self._every(self._lease.total_seconds() / 3), name="orphaned-runs")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def sweep(self, *, prune: bool = False) -> int:
        """Mark failed the runs no process will finish; how many. Nothing while the database is away."""
        try:
            async with service_transaction(self._sessions) as session:
                alive = self._alive()
                # This process's queued runs are alive too: say so to the other replicas' sweeps.
                await runs_db.touch_pending_runs(session, run_ids=alive)
                orphans = await runs_db.fail_orphaned_runs(session, message=ORPHANED, lease=self._lease, alive=alive)
                if prune:
                    await runs_db.prune_run_starts(session, older_than=timedelta(days=1))
        except SQLAlchemyError as error:
            logger.warning("orphaned_runs_not_checked", extra={"error": type(error).__name__})
            return 0
        if orphans:
            logger.info("orphaned_runs_failed", extra={"runs": orphans})
        return orphans

    async def _every(self, seconds: float) -> None:
        pruned_at = time.monotonic()
        while True:
            await asyncio.sleep(seconds)  # a period, not a wait for some event
            prune = time.monotonic() - pruned_at >= PRUNE_EVERY_SECONDS
            try:
                await self.sweep(prune=prune)
            except Exception:
                logger.exception("orphaned_runs_sweep_failed")  # and the next sweep tries again
            if prune:
                pruned_at = time.monotonic()
