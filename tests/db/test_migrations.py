"""`docent migrate` against real, empty databases."""

import asyncio
import shutil
from pathlib import Path

import psycopg
import pytest

from docent.db.migrations import MigrationFailed, discover, migrate
from tests.conftest import MIGRATIONS


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.encode()).fetchall()


async def test_applies_everything_on_an_empty_database_then_is_a_no_op(empty_database: str) -> None:
    applied = await migrate(empty_database, MIGRATIONS)
    assert [migration.path for migration in applied] == sorted(MIGRATIONS.glob("*.sql"))

    assert await migrate(empty_database, MIGRATIONS) == []
    tracked = _rows(empty_database, "select version, name, statements from supabase_migrations.schema_migrations")
    assert [(version, name) for version, name, _ in tracked] == [(m.version, m.name) for m in discover(MIGRATIONS)]
    assert all(statements for *_, statements in tracked)


async def test_provides_what_supabase_would(empty_database: str) -> None:
    await migrate(empty_database, MIGRATIONS)
    roles = _rows(
        empty_database,
        "select rolname, rolbypassrls from pg_roles where rolname in"
        " ('anon', 'authenticated', 'service_role') order by 1",
    )
    assert roles == [("anon", False), ("authenticated", False), ("service_role", True)]
    assert _rows(
        empty_database,
        "select to_regclass('auth.users') is not null, "
        "to_regprocedure('auth.uid()') is not null, to_regprocedure('auth.jwt()') is not null",
    ) == [(True, True, True)]


async def test_compat_migration_leaves_existing_supabase_objects_alone(empty_database: str) -> None:
    # A Supabase-like database: auth.uid() already exists with its own body.
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute(
            "create schema auth; create function auth.uid() returns uuid language sql stable as"
            " $$ select '00000000-0000-0000-0000-000000000001'::uuid $$"
        )
    await migrate(empty_database, MIGRATIONS)
    assert _rows(empty_database, "select auth.uid()::text") == [("00000000-0000-0000-0000-000000000001",)]


async def test_a_failing_file_rolls_back_and_names_itself(empty_database: str, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    broken = directory / "29990101000000_broken.sql"
    broken.write_text("create table half_done (id int);\nselect * from no_such_table;\n")

    with pytest.raises(MigrationFailed, match=r"29990101000000_broken\.sql.*no_such_table"):
        await migrate(empty_database, directory)

    assert _rows(empty_database, "select to_regclass('public.half_done')") == [(None,)]
    versions = [row[0] for row in _rows(empty_database, "select version from supabase_migrations.schema_migrations")]
    assert "29990101000000" not in versions
    assert len(versions) == len(discover(MIGRATIONS)), "files before the broken one stay applied"

    broken.write_text("create table half_done (id int);\n")
    assert [m.name for m in await migrate(empty_database, directory)] == ["broken"]


async def test_concurrent_runners_apply_each_file_once(empty_database: str) -> None:
    results = await asyncio.gather(*(migrate(empty_database, MIGRATIONS) for _ in range(3)))
    assert sorted(len(applied) for applied in results) == [0, 0, len(discover(MIGRATIONS))]


def test_discover_rejects_duplicate_versions_and_skips_strangers(tmp_path: Path) -> None:
    (tmp_path / "1_a.sql").write_text("select 1")
    (tmp_path / "notes.sql").write_text("select 1")
    assert [m.name for m in discover(tmp_path)] == ["a"]
    (tmp_path / "1_b.sql").write_text("select 1")
    with pytest.raises(MigrationFailed, match="share a version"):
        discover(tmp_path)
    with pytest.raises(MigrationFailed, match="not found"):
        discover(tmp_path / "missing")
