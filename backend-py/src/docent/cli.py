"""The `docent` command."""

import asyncio
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated, TextIO
from uuid import UUID

import typer
import uvicorn
from pydantic import SecretStr, ValidationError

from docent.auth.tokens import mint_access_token
from docent.db.embedded import embedded_postgres
from docent.db.engine import create_engine, libpq_url
from docent.db.migrations import MigrationFailed, migrate
from docent.db.users import ensure_auth_user
from docent.log import configure_logging
from docent.settings import Settings, get_settings

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}")
cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Docent: chat with your documents.")


def _settings(*, log_stream: TextIO = sys.stderr) -> Settings:
    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        typer.echo(f"docent: invalid configuration: {problems}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, stream=log_stream)
    return settings


@contextmanager
def _database(settings: Settings, *, migrate_embedded: bool = True) -> Iterator[Settings]:
    """The settings with a DATABASE_URL: the configured one, or the embedded server's (migrated)."""
    if settings.database_url is not None:
        yield settings
        return
    with embedded_postgres(settings.data_dir) as url:
        settings = settings.model_copy(update={"database_url": SecretStr(url)})
        if migrate_embedded:
            _migrate(settings)
        yield settings


def _migrate(settings: Settings) -> list[str]:
    try:
        applied = asyncio.run(migrate(_url(settings), settings.migrations_dir))
    except MigrationFailed as exc:
        typer.echo(f"docent: {exc}", err=True)
        raise typer.Exit(1) from None
    return [migration.path.name for migration in applied]


def _url(settings: Settings) -> str:
    if settings.database_url is None:
        raise RuntimeError("no database")
    return libpq_url(settings.database_url.get_secret_value())


@cli.command()
def serve() -> None:
    """Serve the API; without DATABASE_URL, start and migrate the embedded database first."""
    # The server logs to stdout (one JSON line per request); other commands keep stdout for output.
    with _database(_settings(log_stream=sys.stdout)) as settings:
        from docent.main import create_app  # noqa: PLC0415 (keeps `docent token` and `migrate` light)

        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            http="httptools",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=30,
        )


@cli.command("migrate")
def migrate_command() -> None:
    """Apply pending migrations from supabase/migrations."""
    with _database(_settings(), migrate_embedded=False) as settings:
        applied = _migrate(settings)
    typer.echo(f"applied {len(applied)} migration(s)" + "".join(f"\n  {name}" for name in applied))


@cli.command()
def token(
    email: Annotated[str, typer.Option(help="The user's email; the user is created if new.")],
    ttl: Annotated[int, typer.Option(min=60, max=30 * 86400, help="Lifetime in seconds.")] = 3600,
) -> None:
    """Print a development access token for EMAIL, creating the user if needed (development only)."""
    settings = _settings()
    secret = settings.hs256_secret
    if not settings.is_development or secret is None:
        typer.echo("docent: `docent token` is refused outside APP_ENV=development", err=True)
        raise typer.Exit(2)
    if not _EMAIL.fullmatch(email):
        typer.echo("docent: --email must be an email address", err=True)
        raise typer.Exit(2)
    with _database(settings) as settings:
        user_id = asyncio.run(_ensure_user(_url(settings), email))
    access_token = mint_access_token(
        secret=secret.get_secret_value(),
        user_id=user_id,
        email=email,
        ttl=timedelta(seconds=ttl),
        issuer=settings.jwt_issuer,
    )
    typer.echo(access_token)


async def _ensure_user(url: str, email: str) -> UUID:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            return await ensure_auth_user(conn, email=email)
    finally:
        await engine.dispose()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
