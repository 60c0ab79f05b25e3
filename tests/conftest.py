"""Fixtures: one embedded PostgreSQL per test session, a migrated database, apps and clients."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool
from starlette.types import ASGIApp, Receive, Scope, Send

from docent.db.embedded import embedded_postgres
from docent.db.migrations import migrate
from docent.main import create_app
from docent.retrieval.embeddings import Embedder, create_embedder
from docent.settings import Settings
from tests.helpers import claims, create_database, create_user, hs256
from tests.scripted_openai import ScriptedOpenAI

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = REPO / "supabase" / "migrations"
_ENV = (
    "DATABASE_URL",
    "APP_ENV",
    "SUPABASE_URL",
    "SUPABASE_JWT_SECRET",
    "PORT",
    "HOST",
    "LOG_LEVEL",
    "DATA_DIR",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "EMBEDDINGS",
    "LANGSMITH_TRACING",
    "LANGSMITH_API_KEY",
    "LANGSMITH_ENDPOINT",
    "LANGCHAIN_TRACING_V2",
    "LANGCHAIN_API_KEY",
)


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded server's `postgres` database (superuser login)."""
    with embedded_postgres(tmp_path_factory.mktemp("embedded")) as url:
        yield url


@pytest.fixture
def empty_database(admin_url: str) -> str:
    return create_database(admin_url, f"empty_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def database_url(admin_url: str) -> str:
    url = create_database(admin_url, "docent_test")
    asyncio.run(migrate(url, MIGRATIONS))
    return url


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"database_url": database_url, "migrations_dir": MIGRATIONS, **overrides}
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real local model, loaded once for the whole session."""
    return create_embedder(Settings())


@pytest.fixture
def app(settings: Settings, embedder: Embedder) -> FastAPI:
    return create_app(settings, embedder=embedder)


class InProcess:
    """An app served in-process: an HTTP client, and the lifespan state to synchronise on."""

    def __init__(self, http: httpx.AsyncClient, captured: dict[str, dict[str, Any]]) -> None:
        self.http = http
        self._captured = captured

    @property
    def state(self) -> dict[str, Any]:
        return self._captured["state"]

    async def ingested(self) -> None:
        """Return once the ingestion worker has processed everything uploaded so far."""
        await self.state["worker"].join()


def _state_per_request(app: ASGIApp, captured: dict[str, dict[str, Any]]) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            captured["state"] = scope["state"]  # the dict the lifespan fills in
        elif scope["type"] == "http" and "state" in scope:
            # The ASGI spec gives each request a shallow copy of the lifespan state, as uvicorn
            # does; asgi-lifespan shares one dict, which would leak request.state between requests.
            scope = {**scope, "state": dict(scope["state"])}
        await app(scope, receive, send)

    return wrapped


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[InProcess]:
    """Real HTTP semantics without sockets: the lifespan runs, and requests go through ASGI."""
    captured: dict[str, dict[str, Any]] = {}
    async with LifespanManager(_state_per_request(app, captured)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docent.test") as http:
            served = InProcess(http, captured)
            yield served
            # Leave nothing pending: the next app's worker would resume it mid-way through
            # another test (resuming is the point, but not across tests sharing a database).
            await served.ingested()


@asynccontextmanager
async def serve_in_process(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as served:
        yield served.http


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(app) as http:
        yield http


@pytest.fixture
def user(database_url: str) -> tuple[uuid.UUID, dict[str, str]]:
    """A user known to auth.users, with headers carrying a valid HS256 token."""
    user_id = create_user(database_url)
    return user_id, {"Authorization": f"Bearer {hs256(claims(user_id))}"}


class DatabaseActivity:
    """Counts connection checkouts and statements on every SQLAlchemy engine while active."""

    def __init__(self) -> None:
        self.checkouts = 0
        self.statements: list[str] = []

    def _checkout(self, *_: Any) -> None:
        self.checkouts += 1

    def _execute(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append(statement)


@pytest.fixture
def db_activity() -> Iterator[DatabaseActivity]:
    activity = DatabaseActivity()
    event.listen(Pool, "checkout", activity._checkout)
    event.listen(Engine, "before_cursor_execute", activity._execute)
    yield activity
    event.remove(Pool, "checkout", activity._checkout)
    event.remove(Engine, "before_cursor_execute", activity._execute)


@pytest.fixture
def model_server() -> Iterator[ScriptedOpenAI]:
    server = ScriptedOpenAI()
    with server.running():
        yield server
        server.stop()


@pytest.fixture
def llm_settings(make_settings: Callable[..., Settings], model_server: ScriptedOpenAI) -> Callable[..., Settings]:
    """Settings for an app whose chat model is the scripted server, through langchain-openai."""

    def make(**overrides: Any) -> Settings:
        values = {"openai_base_url": model_server.base_url, "openai_api_key": "sk-scripted", "chat_max_retries": 0}
        return make_settings(**(values | overrides))

    return make


@pytest.fixture
async def agent(
    llm_settings: Callable[..., Settings], embedder: Embedder, request: pytest.FixtureRequest
) -> AsyncIterator[InProcess]:
    """The app with the scripted model; `@pytest.mark.settings(...)` overrides its settings."""
    marker = request.node.get_closest_marker("settings")
    overrides = marker.kwargs if marker is not None else {}
    async with running(create_app(llm_settings(**overrides), embedder=embedder)) as served:
        yield served
