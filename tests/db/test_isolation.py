"""Row Level Security does the isolating, not the application's WHERE clauses."""

import uuid

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from docent.auth import Principal
from docent.db.engine import create_engine, create_sessionmaker
from docent.db.models import Profile
from docent.db.session import user_transaction
from tests.helpers import claims, create_user, insert_run


def _principal(user_id: uuid.UUID) -> Principal:
    return Principal(user_id=user_id, email=f"{user_id}@example.com", claims=claims(user_id))


async def test_rls_hides_other_users_rows_even_without_a_where_clause(database_url: str) -> None:
    alice, bob = create_user(database_url), create_user(database_url)
    engine = create_engine(database_url, pool_size=1)
    sessions = create_sessionmaker(engine)
    try:
        for user_id in (alice, bob):
            async with user_transaction(sessions, _principal(user_id), with_profile=True):
                pass

        async with user_transaction(sessions, _principal(bob)) as session:
            visible = (await session.connection()).execute(text("select id from public.profiles"))
            assert [row.id for row in await visible] == [bob]
            changed = await (await session.connection()).execute(
                text("update public.profiles set display_name = 'pwned'")
            )
            assert changed.rowcount == 1  # only bob's own row
            who = await (await session.connection()).execute(text("select current_user, auth.uid()"))
            assert tuple(who.one()) == ("authenticated", bob)

        with pytest.raises(DBAPIError, match="row-level security"):
            async with user_transaction(sessions, _principal(bob)) as session:
                await (await session.connection()).execute(
                    text("insert into public.profiles (id) values (:id)"), {"id": alice}
                )
    finally:
        await engine.dispose()

    with psycopg.connect(database_url) as conn:
        names = conn.execute("select id, display_name from public.profiles where id = any(%s)", ([alice, bob],))
        assert dict(names.fetchall()) == {alice: None, bob: "pwned"}


async def test_claims_and_role_do_not_outlive_the_transaction(database_url: str) -> None:
    user_id = create_user(database_url)
    engine = create_engine(database_url, pool_size=1)  # one connection: the next checkout reuses it
    sessions = create_sessionmaker(engine)
    try:
        async with user_transaction(sessions, _principal(user_id)) as session:
            pid = (await (await session.connection()).execute(text("select pg_backend_pid()"))).scalar_one()

        with pytest.raises(RuntimeError):
            async with user_transaction(sessions, _principal(user_id)):
                raise RuntimeError  # a failed request: rolled back, settings gone too

        async with engine.connect() as conn:
            after = await conn.execute(
                text("select pg_backend_pid(), current_user, current_setting('request.jwt.claims', true), auth.uid()")
            )
            assert tuple(after.one()) == (pid, "postgres", "", None)
    finally:
        await engine.dispose()


async def test_the_authenticated_role_cannot_bypass_rls(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("select rolsuper, rolbypassrls from pg_roles where rolname = 'authenticated'").fetchall()
        forced = conn.execute("select relrowsecurity from pg_class where oid = 'public.profiles'::regclass").fetchall()
    assert rows == [(False, False)]
    assert forced == [(True,)]


async def test_users_cannot_change_columns_they_were_not_granted(database_url: str) -> None:
    user_id = create_user(database_url)
    engine = create_engine(database_url, pool_size=1)
    sessions = create_sessionmaker(engine)
    try:
        async with user_transaction(sessions, _principal(user_id), with_profile=True):
            pass
        with pytest.raises(DBAPIError, match="permission denied"):
            async with user_transaction(sessions, _principal(user_id)) as session:
                await (await session.connection()).execute(text("update public.profiles set email = 'x@evil'"))
    finally:
        await engine.dispose()


def test_sqlmodel_tables_match_the_migrations(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for table in SQLModel.metadata.sorted_tables:
            columns = conn.execute(
                "select column_name, is_nullable = 'YES' from information_schema.columns"
                " where table_schema = 'public' and table_name = %s",
                (table.name,),
            ).fetchall()
            assert dict(columns) == {column.name: bool(column.nullable) for column in table.columns}, table.name
    assert Profile.__tablename__ in SQLModel.metadata.tables


@pytest.mark.parametrize(
    "statement",
    [
        "update public.usage_daily set input_tokens = 0",
        "insert into public.usage_daily (day, input_tokens) values (current_date, 0)",
        "update public.threads set locked_until = null, status = 'idle'",
        "update public.runs set status = 'success', output_tokens = 0",
        "insert into public.threads (id, status, locked_until) values (gen_random_uuid(), 'busy', 'infinity')",
        "insert into public.runs (id, thread_id, assistant_id, output_tokens)"
        " values (gen_random_uuid(), gen_random_uuid(), 'docent', 5)",
        "insert into public.run_starts (started_at) values (now() - interval '1 day')",
        "select * from langgraph.checkpoints",
        "select public.hold_thread_for_write(gen_random_uuid(), gen_random_uuid())",
    ],
)
async def test_users_cannot_write_their_own_bookkeeping_or_read_checkpoints(database_url: str, statement: str) -> None:
    """Through the Supabase Data API a user acts as `authenticated`: their budget, leases and
    run outcomes, every checkpoint, and the checkpoint writes' lease check are out of reach."""
    user = create_user(database_url)
    engine = create_engine(database_url, pool_size=1)
    sessions = create_sessionmaker(engine)
    try:
        with pytest.raises(DBAPIError, match="permission denied"):
            async with user_transaction(sessions, _principal(user)) as session:
                await (await session.connection()).execute(text(statement))
    finally:
        await engine.dispose()


async def test_the_lease_function_takes_only_the_callers_own_idle_thread(database_url: str) -> None:
    alice, bob = create_user(database_url), create_user(database_url)
    thread = uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into threads (id, user_id) values (%s, %s)", (thread, alice))
    engine = create_engine(database_url, pool_size=1)
    sessions = create_sessionmaker(engine)
    take = text("select public.acquire_thread_lease(:thread, :run, 30)")
    try:
        async with user_transaction(sessions, _principal(bob)) as session:
            result = await (await session.connection()).execute(take, {"thread": thread, "run": uuid.uuid4()})
            assert result.scalar_one() is False
        async with user_transaction(sessions, _principal(alice)) as session:
            result = await (await session.connection()).execute(take, {"thread": thread, "run": uuid.uuid4()})
            assert result.scalar_one() is True
            again = await (await session.connection()).execute(take, {"thread": thread, "run": uuid.uuid4()})
            assert again.scalar_one() is False  # busy until its lease lapses
    finally:
        await engine.dispose()


async def test_a_user_starts_runs_only_unfinished_and_holds_a_lease_five_minutes_at_most(database_url: str) -> None:
    """What a user may insert or call through the Data API cannot finish a run or hold a
    thread longer than a crashed replica would."""
    user = create_user(database_url)
    thread = uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into threads (id, user_id) values (%s, %s)", (thread, user))
    engine = create_engine(database_url, pool_size=1)
    sessions = create_sessionmaker(engine)
    finished = text(
        "insert into public.runs (id, thread_id, assistant_id, status)"
        " values (gen_random_uuid(), :thread, 'docent', 'success')"
    )
    try:
        with pytest.raises(DBAPIError, match="row-level security"):
            async with user_transaction(sessions, _principal(user)) as session:
                await (await session.connection()).execute(finished, {"thread": thread})
        async with user_transaction(sessions, _principal(user)) as session:
            take = text("select public.acquire_thread_lease(:thread, gen_random_uuid(), 'infinity')")
            assert (await (await session.connection()).execute(take, {"thread": thread})).scalar_one() is True
    finally:
        await engine.dispose()
    with psycopg.connect(database_url) as conn:
        held = conn.execute("select locked_until - now() from threads where id = %s", (thread,)).fetchone()
        assert held is not None
        assert held[0].total_seconds() <= 300


async def test_a_lease_is_renewed_and_released_only_by_the_run_that_holds_it(database_url: str) -> None:
    from datetime import timedelta

    from docent.db import runs as runs_db
    from docent.db import threads as threads_db

    owner = create_user(database_url)
    thread, holder, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into threads (id, user_id) values (%s, %s)", (thread, owner))
        for run in (holder, other):
            insert_run(conn, run, thread, owner, "running")
    engine = create_engine(database_url, pool_size=1)
    sessions = create_sessionmaker(engine)
    lease = timedelta(seconds=30)
    ended = {
        "status": "success",
        "error_kind": None,
        "error": None,
        "input_tokens": 0,
        "output_tokens": 0,
        "release": "idle",
    }
    try:
        async with user_transaction(sessions, _principal(owner)) as session:
            assert await threads_db.acquire_thread(session, thread_id=thread, run_id=holder, lease=lease)
        async with sessions() as session, session.begin():  # the service's own login
            assert not await threads_db.renew_lease(session, thread_id=thread, run_id=other, lease=lease)
            assert await runs_db.finish_run(session, run_id=other, **ended)  # type: ignore[arg-type]
            assert await threads_db.renew_lease(session, thread_id=thread, run_id=holder, lease=lease)
            assert await runs_db.finish_run(session, run_id=holder, **ended)  # type: ignore[arg-type]
            assert not await threads_db.renew_lease(session, thread_id=thread, run_id=holder, lease=lease)
    finally:
        await engine.dispose()
    with psycopg.connect(database_url) as conn:
        assert conn.execute("select status, lease_run_id from threads where id = %s", (thread,)).fetchone() == (
            "idle",
            None,
        )


async def test_a_user_can_ask_to_cancel_only_their_own_runs(database_url: str) -> None:
    from docent.db import runs as runs_db

    alice, bob = create_user(database_url), create_user(database_url)
    thread, run = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into threads (id, user_id) values (%s, %s)", (thread, alice))
        insert_run(conn, run, thread, alice, "running")
    engine = create_engine(database_url, pool_size=1)
    sessions = create_sessionmaker(engine)
    try:
        async with user_transaction(sessions, _principal(bob)) as session:
            await runs_db.request_cancel(session, run_id=run)  # RLS: not Bob's to flag
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            assert await runs_db.cancels_requested(conn, [run]) == []
        async with user_transaction(sessions, _principal(alice)) as session:
            await runs_db.request_cancel(session, run_id=run)
    finally:
        await engine.dispose()
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        assert await runs_db.cancels_requested(conn, [run]) == [run]
