"""The application factory and the lifespan that owns every resource."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.api import documents, health, me, runs, search, threads, web
from docent.api.body_limit import BodyLimitMiddleware
from docent.api.errors import add_exception_handlers
from docent.api.request_log import RequestLogMiddleware
from docent.auth import JwksCache, TokenVerifier
from docent.auth.development import development_secret
from docent.db.checkpoints import Checkpoints, open_checkpoints
from docent.db.engine import create_engine, create_sessionmaker, libpq_url
from docent.db.migrations import Migration, discover
from docent.graph import build_graph, create_chat_model
from docent.graph.build import Graph
from docent.graph.models import model_http_client
from docent.ingestion.worker import IngestionWorker
from docent.metrics import Metrics
from docent.retrieval.embeddings import Embedder, create_embedder
from docent.retrieval.retriever import Retriever
from docent.runs import RunManager, Tracing
from docent.settings import Settings


class State(TypedDict):
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    verifier: TokenVerifier
    migrations: list[Migration]
    worker: IngestionWorker
    retriever: Retriever
    metrics: Metrics
    graph: Graph
    checkpoints: Checkpoints
    runs: RunManager
    tracing: Tracing | None


def build_verifier(settings: Settings, http: httpx.AsyncClient) -> TokenVerifier:
    secret = settings.hs256_secret
    return TokenVerifier(
        hs256_secret=secret.get_secret_value() if secret else None,
        jwks=JwksCache(settings.jwks_url, http) if settings.jwks_url else None,
        issuer=settings.jwt_issuer,
    )


def build_tracing(settings: Settings) -> Tracing | None:
    if not settings.langsmith_tracing or settings.langsmith_api_key is None:
        return None
    return Tracing(
        endpoint=settings.langsmith_endpoint,
        api_key=settings.langsmith_api_key.get_secret_value(),
        project=settings.langsmith_project,
    )


def create_app(settings: Settings, *, embedder: Embedder | None = None) -> FastAPI:
    """The app; `embedder` may be passed in to share one loaded model (tests, the CLI)."""
    if settings.database_url is None:
        raise ValueError("create_app needs a DATABASE_URL; `docent serve` starts the embedded database")
    database_url = settings.database_url.get_secret_value()
    request_url = settings.request_database_url.get_secret_value() if settings.request_database_url else database_url

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        async with AsyncExitStack() as stack:
            # REQUEST_DATABASE_URL is the transaction pooler, which cannot keep prepared statements.
            prepared = settings.request_database_url is None
            engine = create_engine(request_url, pool_size=settings.database_pool_size, prepared=prepared)
            stack.push_async_callback(engine.dispose)
            http = await stack.enter_async_context(httpx.AsyncClient(follow_redirects=False))
            sessions = create_sessionmaker(engine)
            model = embedder or create_embedder(settings)
            worker = IngestionWorker(sessions, model)
            await worker.start()
            stack.push_async_callback(worker.stop)
            metrics = Metrics()
            retriever = Retriever(model, metrics)
            checkpoints = await stack.enter_async_context(
                open_checkpoints(
                    libpq_url(database_url),
                    max_size=settings.database_pool_size,
                    cache_bytes=settings.checkpoint_cache_mb * 1024 * 1024,
                )
            )
            model_http = await stack.enter_async_context(model_http_client(settings))
            graph = build_graph(
                create_chat_model(settings, http_client=model_http),
                checkpointer=checkpoints.saver,
                max_tool_rounds=settings.max_tool_rounds,
                history_turns=settings.chat_history_turns,
                search_first=settings.search_first,
            )
            tracing = build_tracing(settings)
            if tracing is not None:
                tracing.start()
                stack.push_async_callback(tracing.close)
            runs = RunManager(
                graph=graph,
                checkpoints=checkpoints,
                sessions=sessions,
                retriever=retriever,
                settings=settings,
                metrics=metrics,
                tracing=tracing,
                signals_conninfo=libpq_url(database_url),
            )
            await runs.start()
            stack.push_async_callback(runs.stop, grace=settings.shutdown_timeout_seconds)
            yield State(
                settings=settings,
                engine=engine,
                sessions=sessions,
                verifier=build_verifier(settings, http),
                migrations=discover(settings.migrations_dir),
                worker=worker,
                retriever=retriever,
                metrics=metrics,
                graph=graph,
                checkpoints=checkpoints,
                runs=runs,
                tracing=tracing,
            )

    app = FastAPI(title="Docent", version="0.1.0", lifespan=lifespan)
    # Room for the multipart framing around an upload of the largest accepted size.
    app.add_middleware(BodyLimitMiddleware, max_upload_bytes=settings.max_upload_bytes + 65536)
    app.add_middleware(RequestLogMiddleware)
    add_exception_handlers(app)
    app.include_router(health.router)
    app.include_router(me.router)
    app.include_router(documents.router)
    app.include_router(search.router)
    app.include_router(threads.router)
    app.include_router(runs.router)
    app.include_router(web.router)
    if development_secret(settings) is not None:
        app.include_router(web.dev_router)
    return app
