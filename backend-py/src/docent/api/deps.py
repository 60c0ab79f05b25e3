"""Typed access to the lifespan's resources, and the per-request user transaction.

Every dependency is `async def`, even those that only read `request.state`: FastAPI runs a
plain `def` dependency in its thread pool, a thread hop per dependency per request."""

from collections.abc import AsyncIterator, Callable
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.auth import CurrentPrincipal
from docent.db.checkpoints import Checkpoints
from docent.db.migrations import Migration
from docent.db.session import user_transaction
from docent.graph.build import Graph
from docent.ingestion.worker import IngestionWorker
from docent.metrics import Metrics
from docent.retrieval.retriever import Retriever
from docent.runs import RunManager, Tracing
from docent.settings import Settings

_AFTER_COMMIT = "docent.after_commit"


async def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return cast(async_sessionmaker[AsyncSession], request.state.sessions)


async def _engine(request: Request) -> AsyncEngine:
    return cast(AsyncEngine, request.state.engine)


async def _migrations(request: Request) -> list[Migration]:
    return cast(list[Migration], request.state.migrations)


async def _settings(request: Request) -> Settings:
    return cast(Settings, request.state.settings)


async def _worker(request: Request) -> IngestionWorker:
    return cast(IngestionWorker, request.state.worker)


async def _retriever(request: Request) -> Retriever:
    return cast(Retriever, request.state.retriever)


async def _graph(request: Request) -> Graph:
    """The compiled graph, once its checkpointer's tables exist (503 while they cannot)."""
    await cast(Checkpoints, request.state.checkpoints).ensure()
    return cast(Graph, request.state.graph)


async def _runs(request: Request) -> RunManager:
    return cast(RunManager, request.state.runs)


async def _metrics(request: Request) -> Metrics:
    return cast(Metrics, request.state.metrics)


async def _tracing(request: Request) -> Tracing | None:
    return cast(Tracing | None, request.state.tracing)


async def _user_session(request: Request, principal: CurrentPrincipal) -> AsyncIterator[AsyncSession]:
    async with user_transaction(await _sessions(request), principal, with_profile=True) as session:
        yield session
    for hook in session.info.pop(_AFTER_COMMIT, []):
        hook()


def after_commit(session: AsyncSession, hook: Callable[[], object]) -> None:
    """Call `hook` once the request's transaction has committed (never if it rolls back)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(hook)


Engine = Annotated[AsyncEngine, Depends(_engine)]
# For a route that must hold no connection for a while first; others take `UserSession`.
Sessions = Annotated[async_sessionmaker[AsyncSession], Depends(_sessions)]
ExpectedMigrations = Annotated[list[Migration], Depends(_migrations)]
AppSettings = Annotated[Settings, Depends(_settings)]
Worker = Annotated[IngestionWorker, Depends(_worker)]
AppRetriever = Annotated[Retriever, Depends(_retriever)]
AgentGraph = Annotated[Graph, Depends(_graph)]
Runs = Annotated[RunManager, Depends(_runs)]
AppMetrics = Annotated[Metrics, Depends(_metrics)]
AppTracing = Annotated[Tracing | None, Depends(_tracing)]
# scope="function": the transaction commits before the response is sent, never after.
UserSession = Annotated[AsyncSession, Depends(_user_session, scope="function")]
