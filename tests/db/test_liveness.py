"""Which pooled connections are pinged before they are lent, against a real server."""

import time
from typing import Any

import psycopg
from sqlalchemy import text

from docent.db.engine import create_engine
from docent.db.liveness import PING_AFTER_IDLE_SECONDS, may_be_dead


async def test_only_a_connection_idle_too_long_or_written_to_by_the_server_may_be_dead(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
        assert not may_be_dead(connection, time.monotonic())
        assert may_be_dead(connection, time.monotonic() - PING_AFTER_IDLE_SECONDS - 1)
        assert may_be_dead(connection, None)  # never returned to its pool yet
        pid = connection.info.backend_pid
        with psycopg.connect(database_url, autocommit=True) as admin:  # as a restarting server does
            admin.execute("select pg_terminate_backend(%s, 5000)", (pid,))
        assert may_be_dead(connection, time.monotonic())
    assert may_be_dead(connection, time.monotonic())  # closed


async def test_the_engine_pings_only_a_connection_that_may_be_dead(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1)
    dialect = engine.sync_engine.dialect
    pings = []
    ping = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    dialect.do_ping = counted  # type: ignore[method-assign]
    try:
        for _ in range(3):  # fresh, then lent as it is
            async with engine.connect() as connection:
                pid = (await connection.execute(text("select pg_backend_pid()"))).scalar_one()
        assert pings == []
        with psycopg.connect(database_url, autocommit=True) as admin:  # as a restarting server does
            admin.execute("select pg_terminate_backend(%s, 5000)", (pid,))
        async with engine.connect() as connection:  # pinged, found dead, replaced
            assert (await connection.execute(text("select pg_backend_pid()"))).scalar_one() != pid
        assert pings == [1]
    finally:
        await engine.dispose()
