"""LangGraph's Postgres checkpointer, on its own pool, in the `langgraph` schema.

The schema is created by the migrations and granted to no user role: the Data API cannot
expose it and RLS'd roles cannot read it. Threads are reached only after their `threads`
row (under RLS) has been found. The pool checks each connection before lending it (see
`_Liveness`), so a restarted database costs nothing but a reconnect; prepared statements are off for
PgBouncer-style poolers. The `search_path` is set per connection, which needs a session
(direct, or Supabase's session pooler): see the README's deployment notes.

The checkpointer's own tables are set up at start-up when the database allows, else on
first use: the service starts (and `/health/ready` explains) while the database is down or
not yet migrated.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast
from uuid import UUID
from weakref import WeakKeyDictionary

import psycopg
from langgraph.pregel import Pregel
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from docent.db.checkpoint_saver import LatestStateSaver
from docent.db.checkpoint_serde import RememberingSerializer
from docent.db.engine import unavailable
from docent.db.liveness import may_be_dead
from docent.errors import Unavailable

SCHEMA = "langgraph"
SETUP_TIMEOUT_SECONDS = 5.0
STARTUP_SETUP_SECONDS = 2.0  # a database that is up answers in milliseconds
logger = logging.getLogger(__name__)


async def _configure(connection: AsyncConnection[Any]) -> None:
    await connection.execute(f"set search_path to {SCHEMA}")


class _Liveness:
    """The pool's check: a round trip only for a connection that `may_be_dead`."""

    def __init__(self) -> None:
        self._idle_since: WeakKeyDictionary[AsyncConnection[Any], float] = WeakKeyDictionary()

    async def returned(self, connection: AsyncConnection[Any]) -> None:
        self._idle_since[connection] = time.monotonic()

    async def check(self, connection: AsyncConnection[Any]) -> None:
        if may_be_dead(connection, self._idle_since.get(connection)):
            await AsyncConnectionPool.check_connection(connection)


UNAVAILABLE = "Conversation storage is unavailable: the database is unreachable or not migrated."


@contextmanager
def storage_errors() -> Iterator[None]:
    """The checkpointer's database being away, or not migrated, as 503 `Unavailable` (not a
    500); a statement's own failure stays an error."""
    try:
        yield
    except (psycopg.Error, PoolTimeout) as error:
        if unavailable(error) or isinstance(error, psycopg.errors.UndefinedTable):
            raise Unavailable(UNAVAILABLE, code="checkpoints_unavailable") from error
        raise


def forget_threads(graph: Pregel[Any, Any, Any, Any], thread_ids: Iterable[UUID]) -> None:
    """After deleting threads (their checkpoints go with them, by a trigger, in the same
    transaction): drop what this process's saver remembers of them."""
    if isinstance(graph.checkpointer, LatestStateSaver):
        for thread_id in thread_ids:
            graph.checkpointer.forget(str(thread_id))


class Checkpoints:
    """The saver, and whether its tables are known to exist."""

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Any]], *, cache_bytes: int = 0) -> None:
        serde = RememberingSerializer(budget_bytes=cache_bytes)
        self.saver = LatestStateSaver(pool, serde=serde, budget_bytes=cache_bytes)
        # The saver serialises every operation behind one lock, which a single shared
        # connection needs and a pool does not: runs on different threads would otherwise
        # queue for each other's checkpoint writes (langgraph#7259, fix not yet released).
        self.saver.lock = cast(asyncio.Lock, asyncio.Semaphore(pool.max_size))
        self._ready = False
        self._lock = asyncio.Lock()

    async def ensure(self, *, within: float = SETUP_TIMEOUT_SECONDS) -> None:
        """Create the checkpointer's tables once; `Unavailable` while the database cannot."""
        if self._ready:
            return
        async with self._lock:
            try:
                async with asyncio.timeout(within):
                    await self._setup_once()
            except (psycopg.Error, PoolTimeout, TimeoutError) as error:
                raise Unavailable(UNAVAILABLE, code="checkpoints_unavailable") from error

    async def _setup_once(self) -> None:
        if not self._ready:  # another request may have set it up while this one waited
            await self.saver.setup()
            self._ready = True


@asynccontextmanager
async def open_checkpoints(conninfo: str, *, max_size: int, cache_bytes: int = 0) -> AsyncIterator[Checkpoints]:
    liveness = _Liveness()
    pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row},
        configure=_configure,
        check=liveness.check,
        reset=liveness.returned,
        timeout=SETUP_TIMEOUT_SECONDS,
        open=False,
        name="checkpoints",
    )
    await pool.open(wait=False)
    checkpoints = Checkpoints(pool, cache_bytes=cache_bytes)
    try:
        await checkpoints.ensure(within=STARTUP_SETUP_SECONDS)
    except Unavailable:
        logger.warning("checkpointer not set up at start-up; retrying on first use", exc_info=True)
    try:
        yield checkpoints
    finally:
        await pool.close()
