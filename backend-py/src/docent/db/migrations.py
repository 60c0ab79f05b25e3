"""Apply `supabase/migrations/*.sql` in order, tracked like the Supabase CLI tracks them.

Each file runs in its own transaction and is recorded in
`supabase_migrations.schema_migrations`, so `supabase db push` and `docent migrate` agree
on what has been applied. A session advisory lock keeps concurrent runners in line.
"""

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

log = logging.getLogger(__name__)

_FILENAME = re.compile(r"(?P<version>\d+)_(?P<name>.+)\.sql")
_LOCK_KEY = 7_412_031_915  # arbitrary, fixed: "docent migrations"
_TRACKING_TABLE = b"""
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
    version text primary key, statements text[], name text
);
"""
_APPLIED = "select version from supabase_migrations.schema_migrations"


class MigrationFailed(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    path: Path


def discover(directory: Path) -> list[Migration]:
    if not directory.is_dir():
        raise MigrationFailed(f"migrations directory not found: {directory}")
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILENAME.fullmatch(path.name)
        if match is None:
            log.warning("migration_file_skipped", extra={"file": path.name})
            continue
        found.append(Migration(version=match["version"], name=match["name"], path=path))
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise MigrationFailed(f"two migration files share a version in {directory}")
    return sorted(found, key=lambda migration: migration.version)


async def applied_versions(conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> set[str]:
    table = await conn.execute("select to_regclass('supabase_migrations.schema_migrations')")
    row = await table.fetchone()
    if row is None or row[0] is None:
        return set()
    cursor = await conn.execute(_APPLIED)
    return {str(version) for (version,) in await cursor.fetchall()}


async def migrate(conninfo: str, directory: Path) -> list[Migration]:
    """Apply the pending migrations; return those applied. Idempotent."""
    migrations = discover(directory)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            await conn.execute(_TRACKING_TABLE)
            done = await applied_versions(conn)
            pending = [migration for migration in migrations if migration.version not in done]
            for migration in pending:
                await _apply(conn, migration)
        finally:
            await conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return pending


async def _apply(conn: psycopg.AsyncConnection[tuple[Any, ...]], migration: Migration) -> None:
    sql = migration.path.read_text(encoding="utf-8")
    try:
        async with conn.transaction():
            await conn.execute(sql.encode())
            await conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements) values (%s, %s, %s)",
                (migration.version, migration.name, [sql]),
            )
    except psycopg.Error as exc:
        message = exc.diag.message_primary or str(exc)
        raise MigrationFailed(f"{migration.path.name} failed and was rolled back: {message}") from exc
    log.info("migration_applied", extra={"version": migration.version, "migration": migration.name})
