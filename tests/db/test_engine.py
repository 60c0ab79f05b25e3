"""Retrying while the database is away: what records a run's end across a restart."""

import psycopg
import pytest
import sqlalchemy.exc

from docent.db.engine import retrying_while_unavailable


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
