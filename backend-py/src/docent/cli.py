"""The `docent` command."""

import asyncio
import math
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated, TextIO, cast
from uuid import UUID

import typer
import uvicorn
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.progress import Progress
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.auth.development import development_secret, development_token, is_email
from docent.db.chunks import stale_documents
from docent.db.embedded import embedded_postgres
from docent.db.engine import create_engine, create_sessionmaker, libpq_url
from docent.db.migrations import MigrationFailed, migrate
from docent.db.session import service_transaction
from docent.db.users import ensure_auth_user, find_auth_user
from docent.ingestion.batch import IngestSummary, expand, ingest_files
from docent.ingestion.reindex import reindex
from docent.log import configure_logging
from docent.retrieval.embeddings import Embedder, create_embedder
from docent.retrieval.evaluation import ModeReport, Question, evaluate, load_questions
from docent.retrieval.retriever import Retriever
from docent.retrieval.search import Mode
from docent.settings import Settings, get_settings

SAME_SIGNAL_SECONDS = 0.5  # SIGINTs this close together are one Ctrl-C, delivered twice
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

        config = uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            http="httptools",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout_seconds),
        )
        server = _Server(config)
        with suppress(KeyboardInterrupt):  # uvicorn raises the signal again once it has stopped
            server.run()
    if not server.started:
        raise typer.Exit(3)  # as uvicorn.run: the server could not start


class _Server(uvicorn.Server):
    """Uvicorn's server, taking one Ctrl-C delivered twice for one. A terminal's Ctrl-C
    signals the whole process group, and `uv run` (under `make run`) forwards it to its child
    too: the server got SIGINT twice at once, took the second for "force quit", and cut the
    runs in flight short of the drain. A second Ctrl-C a moment later still forces the exit."""

    _first_exit = -math.inf

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if sig == signal.SIGINT and self.should_exit and now - self._first_exit < SAME_SIGNAL_SECONDS:
            return
        if not self.should_exit:
            self._first_exit = now
        super().handle_exit(sig, frame)


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
    secret = development_secret(settings)
    if secret is None:
        typer.echo("docent: `docent token` is refused outside APP_ENV=development", err=True)
        raise typer.Exit(2)
    if not is_email(email):
        typer.echo("docent: --email must be an email address", err=True)
        raise typer.Exit(2)
    with _database(settings) as settings:
        access_token = asyncio.run(_token(settings, secret, email, timedelta(seconds=ttl)))
    typer.echo(access_token)


async def _token(settings: Settings, secret: str, email: str, ttl: timedelta) -> str:
    engine = create_engine(_url(settings), pool_size=1)
    try:
        async with engine.begin() as conn:
            return await development_token(conn, secret=secret, email=email, ttl=ttl, issuer=settings.jwt_issuer)
    finally:
        await engine.dispose()


def main() -> None:
    cli()


@cli.command()
def ingest(
    email: Annotated[str, typer.Option(help="The owner's email (created in development if new).")],
    paths: Annotated[list[Path], typer.Argument(exists=True, help="Files or folders to ingest.")],
) -> None:
    """Ingest files (txt, md, html, pdf) for a user, with a progress bar and a summary."""
    files = expand(paths)
    with _database(_settings()) as settings:
        summary = asyncio.run(_ingest(settings, email, files))
    rate = summary.chunks / summary.seconds if summary.seconds else 0.0
    typer.echo(
        f"{summary.ready} ready, {summary.unchanged} unchanged, {len(summary.failed)} failed;"
        f" {summary.chunks} chunks in {summary.seconds:.1f} s ({rate:.1f} chunks/s)"
    )
    for path, reason in summary.failed:
        typer.echo(f"  failed: {path}: {reason}", err=True)
    if summary.failed and not summary.ready and not summary.unchanged:
        raise typer.Exit(1)


@cli.command("eval")
def eval_command(  # noqa: PLR0917 (typer options)
    questions: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="questions.jsonl")],
    corpus: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Folder of documents to search.")],
    mode: Annotated[list[str] | None, typer.Option(help="hybrid, vector or keyword; repeatable.")] = None,
    k: Annotated[int, typer.Option(min=1, max=50, help="The recall@k cutoff.")] = 5,
    sample: Annotated[int | None, typer.Option(min=0, help="Only the gold pages and this many others.")] = None,
    email: Annotated[str, typer.Option(help="The evaluation user.")] = "eval@docent.local",
) -> None:
    """Ingest CORPUS for an evaluation user (unchanged files are skipped) and score retrieval."""
    modes = mode or ["keyword", "vector", "hybrid"]
    unknown = set(modes) - {"hybrid", "vector", "keyword"}
    if unknown:
        raise typer.BadParameter(f"unknown mode(s): {', '.join(sorted(unknown))}", param_hint="--mode")
    asked = load_questions(questions)
    files = _sample(expand([corpus]), asked, sample)
    with _database(_settings()) as settings:
        summary = asyncio.run(_ingest(settings, email, files))
        typer.echo(
            f"corpus: {len(files)} files, {summary.ready + summary.unchanged} ready, {len(summary.failed)} failed"
        )
        reports = asyncio.run(_evaluate(settings, email, asked, cast(list[Mode], modes), k))
    typer.echo(
        f"\n{len(asked)} questions\n| mode | R@1 | R@{k} | MRR@10 | p50 ms | p95 ms |\n|---|---|---|---|---|---|"
    )
    for report in reports:
        typer.echo(
            f"| {report.mode} | {report.recall_at_1:.2f} | {report.recall_at_k:.2f} | {report.mrr_at_10:.2f}"
            f" | {report.p50_ms:.1f} | {report.p95_ms:.1f} |"
        )


@cli.command("reindex")
def reindex_command() -> None:
    """Re-embed chunks that another embedding model produced."""
    with _database(_settings()) as settings:
        documents, chunks = asyncio.run(_reindex(settings))
    typer.echo(f"re-embedded {chunks} chunk(s) in {documents} document(s)")


async def _reindex(settings: Settings) -> tuple[int, int]:
    async with _services(settings) as (sessions, embedder):
        return await reindex(sessions, embedder)


def _sample(files: list[Path], questions: list[Question], others: int | None) -> list[Path]:
    if others is None:
        return files
    gold = {page for question in questions for page in question.gold_pages}
    rest = [path for path in files if path.name not in gold]
    step = max(1, len(rest) // others) if others else len(rest) + 1
    return [path for path in files if path.name in gold] + rest[::step][:others]


@asynccontextmanager
async def _services(settings: Settings) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], Embedder]]:
    engine = create_engine(_url(settings), pool_size=2)
    try:
        yield create_sessionmaker(engine), create_embedder(settings)
    finally:
        await engine.dispose()


async def _owner(settings: Settings, sessions: async_sessionmaker[AsyncSession], email: str) -> UUID:
    async with service_transaction(sessions) as session:
        conn = await session.connection()
        if settings.is_development:
            return await ensure_auth_user(conn, email=email)
        found = await find_auth_user(conn, email=email)
    if found is None:
        typer.echo(f"docent: no user with email {email}", err=True)
        raise typer.Exit(2)
    return found


async def _ingest(settings: Settings, email: str, files: list[Path]) -> IngestSummary:
    async with _services(settings) as (sessions, embedder):
        owner = await _owner(settings, sessions, email)
        with Progress(transient=True, console=Console(stderr=True)) as bar:
            task = bar.add_task("ingesting", total=len(files))
            return await ingest_files(
                sessions, embedder, user_id=owner, files=files, max_bytes=settings.max_upload_bytes,
                progress=lambda _: bar.advance(task),
            )  # fmt: skip


async def _evaluate(
    settings: Settings, email: str, questions: list[Question], modes: list[Mode], k: int
) -> list[ModeReport]:
    async with _services(settings) as (sessions, embedder):
        owner = await _owner(settings, sessions, email)
        async with sessions() as session:
            stale = [
                document for document, user in await stale_documents(session, model=embedder.name) if user == owner
            ]
        if stale:  # left from an earlier embedding model: `ingest` skips unchanged files
            typer.echo(
                f"warning: {len(stale)} document(s) were embedded by another model; vector search skips them"
                " until `docent reindex` re-embeds them",
                err=True,
            )
        retriever = Retriever(embedder)
        return [
            await evaluate(sessions, retriever, user_id=owner, questions=questions, mode=mode, k=k) for mode in modes
        ]


if __name__ == "__main__":
    main()
