"""A run's hold on its thread: a lease in the thread's row, taken at admission (an atomic
conditional update) and renewed while the run lives, so that two runs never write one
thread, across replicas too. A crashed replica's lease lapses within LEASE_SECONDS; a run
whose renewal finds its thread taken over stops with `lease_lost`."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db import threads as threads_db
from docent.db.checkpoint_saver import LeaseLost
from docent.db.session import service_transaction
from docent.runs import failures
from docent.runs.live import LiveRun

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30.0  # renewed every third of that while the run lives


@asynccontextmanager
async def holding(live: LiveRun, sessions: async_sessionmaker[AsyncSession], lease: timedelta) -> AsyncIterator[None]:
    """Renew the thread's lease in the background while the run lives."""
    renewal = asyncio.create_task(_renew(live, sessions, lease), name=f"lease-{live.run_id}")
    try:
        yield
    finally:
        renewal.cancel()
        await asyncio.gather(renewal, return_exceptions=True)


async def _renew(live: LiveRun, sessions: async_sessionmaker[AsyncSession], lease: timedelta) -> None:
    while True:
        await asyncio.sleep(LEASE_SECONDS / 3)  # a heartbeat, not a wait for some event
        try:
            async with service_transaction(sessions) as session:  # the service's own bookkeeping
                held = await threads_db.renew_lease(session, thread_id=live.thread_id, run_id=live.run_id, lease=lease)
        except SQLAlchemyError:
            logger.warning("lease_renewal_failed", extra={"run_id": str(live.run_id)}, exc_info=True)
            continue
        if not held:  # the lease lapsed and another run took the thread: this one must stop
            logger.warning("lease_lost", extra={"run_id": str(live.run_id)})
            kind, message = failures.describe(LeaseLost())
            live.cancel(error={"error": kind, "message": message})
            return
