"""Retrying while the database is away: what records a run's end across a restart."""

import psycopg
import psycopg.errors
import pytest
import sqlalchemy.exc

from docent.db.engine import retrying_while_unavailable, unavailable


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
