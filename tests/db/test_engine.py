"""The engine: prepared statements where the connection keeps them, and retrying while the
database is away (what records a run's end across a restart)."""

from collections.abc import Callable

import psycopg
import psycopg.errors
import pytest
import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from docent.db.engine import create_engine, retrying_while_unavailable, unavailable
from docent.main import create_app
from docent.settings import Settings
from tests.conftest import running


def _outage() -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("commit", {}, psycopg.OperationalError("server closed the connection"))


async def test_an_attempt_is_retried_until_the_database_is_back() -> None:
    attempts = []

    async def attempt() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise _outage()

    await retrying_while_unavailable(attempt, within=10)
    assert len(attempts) == 3


async def test_the_last_error_is_raised_once_the_time_is_up_and_others_at_once() -> None:
    async def down() -> None:
        raise _outage()

    with pytest.raises(sqlalchemy.exc.OperationalError):
        await retrying_while_unavailable(down, within=0)

    calls = []

    async def broken() -> None:
        calls.append(1)
        raise ValueError("not a database outage")

    with pytest.raises(ValueError, match="not a database outage"):
        await retrying_while_unavailable(broken, within=10)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("error", "is_outage"),
    [
        (psycopg.errors.AdminShutdown(), True),  # 57P01: the server is shutting down
        (psycopg.errors.CannotConnectNow(), True),
        (psycopg.errors.TooManyConnections(), True),
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),  # no SQLSTATE
        (psycopg.errors.DeadlockDetected(), False),
        (psycopg.errors.QueryCanceled(), False),  # a statement timeout
        (psycopg.errors.UniqueViolation(), False),
    ],
)
def test_an_outage_is_told_apart_from_a_statement_that_failed(error: psycopg.Error, is_outage: bool) -> None:
    assert unavailable(sqlalchemy.exc.OperationalError("select 1", {}, error)) is is_outage
    assert unavailable(error) is is_outage


async def test_a_statement_that_failed_is_not_retried() -> None:
    calls = []

    async def deadlocked() -> None:
        calls.append(1)
        raise sqlalchemy.exc.OperationalError("update", {}, psycopg.errors.DeadlockDetected())

    with pytest.raises(sqlalchemy.exc.OperationalError):
        await retrying_while_unavailable(deadlocked, within=10)
    assert len(calls) == 1


async def _prepared_after_repeats(engine: AsyncEngine) -> int:
    """How many statements the server holds prepared for a connection that ran one six times."""
    async with engine.connect() as connection:
        for _ in range(6):
            await connection.execute(text("select count(*) from public.documents"))
        return int(await connection.scalar(text("select count(*) from pg_prepared_statements")) or 0)


@pytest.mark.parametrize("prepared", [True, False])
async def test_statements_run_often_are_prepared_unless_told_not_to(database_url: str, prepared: bool) -> None:
    engine = create_engine(database_url, pool_size=1, prepared=prepared)
    try:
        assert (await _prepared_after_repeats(engine) > 0) is prepared
    finally:
        await engine.dispose()


@pytest.mark.parametrize("pooled", [True, False])
async def test_request_traffic_through_the_transaction_pooler_prepares_nothing(
    make_settings: Callable[..., Settings], database_url: str, pooled: bool
) -> None:
    # REQUEST_DATABASE_URL names the transaction pooler (here the same database stands in).
    settings = make_settings(request_database_url=database_url) if pooled else make_settings()
    async with running(create_app(settings)) as served:
        assert (await _prepared_after_repeats(served.state["engine"]) > 0) is not pooled
