"""The SQLAlchemy engine and session factory over psycopg 3."""

import asyncio
import time
from collections.abc import Awaitable, Callable

import psycopg
import psycopg_pool
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

_SCHEMES = ("postgresql+psycopg://", "postgresql://", "postgres://")

# What a database that is down, restarting or out of connections raises: through SQLAlchemy
# (which wraps psycopg's errors) or through the checkpointer's psycopg pool.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
)


def _without_scheme(url: str) -> str:
    for scheme in _SCHEMES:
        if url.startswith(scheme):
            return url.removeprefix(scheme)
    raise ValueError("DATABASE_URL must start with postgresql:// or postgres://")


def libpq_url(url: str) -> str:
    """The URL as psycopg and libpq take it."""
    return "postgresql://" + _without_scheme(url)


def create_engine(url: str, *, pool_size: int) -> AsyncEngine:
    return create_async_engine(
        "postgresql+psycopg://" + _without_scheme(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,  # a restarted database costs one failed ping, not a failed request
        pool_recycle=1800,
        hide_parameters=True,  # bound values (emails, names) stay out of error messages and logs
        # No server-side prepared statements: the Supabase transaction pooler cannot keep them.
        connect_args={"prepare_threshold": None, "connect_timeout": 5},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def retrying_while_unavailable(attempt: Callable[[], Awaitable[None]], *, within: float) -> None:
    """`attempt()`, tried again with back-off while the database is unavailable, for up to
    `within` seconds; then its last error."""
    deadline, delay = time.monotonic() + within, 0.25
    while True:
        try:
            await attempt()
        except UNAVAILABLE_ERRORS:
            if time.monotonic() + delay > deadline:
                raise
            await asyncio.sleep(delay)  # back-off while the database is away
            delay = min(delay * 2, 4.0)
        else:
            return
