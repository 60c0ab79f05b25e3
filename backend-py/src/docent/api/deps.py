"""Typed access to the lifespan's resources, and the per-request user transaction."""

from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.auth import CurrentPrincipal
from docent.db.migrations import Migration
from docent.db.profiles import ensure_profile
from docent.db.session import user_transaction
from docent.ingestion.worker import IngestionWorker
from docent.retrieval.retriever import Retriever
from docent.settings import Settings


def _engine(request: Request) -> AsyncEngine:
    return cast(AsyncEngine, request.state.engine)


def _migrations(request: Request) -> list[Migration]:
    return cast(list[Migration], request.state.migrations)


def _settings(request: Request) -> Settings:
    return cast(Settings, request.state.settings)


def _worker(request: Request) -> IngestionWorker:
    return cast(IngestionWorker, request.state.worker)


def _retriever(request: Request) -> Retriever:
    return cast(Retriever, request.state.retriever)


async def _user_session(request: Request, principal: CurrentPrincipal) -> AsyncIterator[AsyncSession]:
    sessions = cast(async_sessionmaker[AsyncSession], request.state.sessions)
    async with user_transaction(sessions, principal) as session:
        await ensure_profile(session, user_id=principal.user_id, email=principal.email)
        yield session


Engine = Annotated[AsyncEngine, Depends(_engine)]
ExpectedMigrations = Annotated[list[Migration], Depends(_migrations)]
AppSettings = Annotated[Settings, Depends(_settings)]
Worker = Annotated[IngestionWorker, Depends(_worker)]
AppRetriever = Annotated[Retriever, Depends(_retriever)]
# scope="function": the transaction commits before the response is sent, never after.
UserSession = Annotated[AsyncSession, Depends(_user_session, scope="function")]
