"""The SQLAlchemy engine and session factory over psycopg 3."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import psycopg_pool
import sqlalchemy.exc
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db.liveness import may_be_dead

_SCHEMES = ("postgresql+psycopg://", "postgresql://", "postgres://")

# The errors a database that is down, restarting or out of connections raises, through
# SQLAlchemy (which wraps psycopg's) or the checkpointer's psycopg pool; `unavailable` tells
# those apart from a statement's own failures (deadlock, timeout) that share their types.
MAYBE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
)
# Connection exceptions, the server shutting down or not yet accepting, too many connections.
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")


def unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached now, rather than that a statement failed."""
    if isinstance(error, (psycopg_pool.PoolTimeout, sqlalchemy.exc.TimeoutError)):
        return True
    cause = error.orig if isinstance(error, sqlalchemy.exc.DBAPIError) else error
    if not isinstance(cause, (psycopg.OperationalError, psycopg.InterfaceError)):
        return False
    state = cause.sqlstate
    return state is None or state.startswith(_UNAVAILABLE_STATES)  # None: the client lost the connection


def _without_scheme(url: str) -> str:
    for scheme in _SCHEMES:
        if url.startswith(scheme):
            return url.removeprefix(scheme)
    raise ValueError("DATABASE_URL must start with postgresql:// or postgres://")


def libpq_url(url: str) -> str:
    """The URL as psycopg and libpq take it."""
    return "postgresql://" + _without_scheme(url)


def create_engine(url: str, *, pool_size: int, prepared: bool = True) -> AsyncEngine:
    """The engine; with `prepared`, a statement run a few times on a connection is prepared
    on the server, so it is planned once rather than at every run (0.9 ms of a search's
    2 ms in the database). A transaction pooler cannot keep prepared statements: give it
    `prepared=False`."""
    engine = create_async_engine(
        "postgresql+psycopg://" + _without_scheme(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        hide_parameters=True,  # bound values (emails, names) stay out of error messages and logs
        # psycopg prepares a statement on its fifth run on a connection (its default).
        connect_args={"prepare_threshold": 5 if prepared else None, "connect_timeout": 5},
    )
    _lend_live_connections(engine)
    return engine


def _lend_live_connections(engine: AsyncEngine) -> None:
    """SQLAlchemy's `pool_pre_ping`, but only for a connection that `may_be_dead`: a
    restarted database costs one failed ping, not a failed request, and a live pool no
    round trip per transaction."""
    pool, dialect = engine.sync_engine.pool, engine.sync_engine.dialect

    @event.listens_for(pool, "connect")
    @event.listens_for(pool, "checkin")
    def idle(_: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def lend(dbapi_connection: Any, record: ConnectionPoolEntry, _: Any) -> None:
        if not may_be_dead(record.driver_connection, record.info.get("idle_since")):
            return
        try:  # checkout runs in SQLAlchemy's greenlet, where the dialect's ping may wait on the socket
            alive = dialect.do_ping(dbapi_connection)
        except Exception as error:  # the server's goodbye (57P01), say: replaced, not passed to a request
            raise sqlalchemy.exc.DisconnectionError(str(error)) from error
        if not alive:
            raise sqlalchemy.exc.DisconnectionError("the database closed the connection")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def retrying_while_unavailable(attempt: Callable[[], Awaitable[None]], *, within: float) -> None:
    """`attempt()`, tried again with back-off while the database is unavailable, for up to
    `within` seconds; then its last error."""
    deadline, delay = time.monotonic() + within, 0.25
    while True:
        try:
            await attempt()
        except MAYBE_UNAVAILABLE as error:
            if not unavailable(error) or time.monotonic() + delay > deadline:
                raise
            await asyncio.sleep(delay)  # back-off while the database is away
            delay = min(delay * 2, 4.0)
        else:
            return
