"""Liveness and readiness."""

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from docent.api.deps import AppMetrics, AppSettings, Engine, ExpectedMigrations
from docent.api.json_body import StrictJSONRoute

router = APIRouter(tags=["health"], route_class=StrictJSONRoute)

_TRACKED = text("select to_regclass('supabase_migrations.schema_migrations') is not null")
_APPLIED = text("select version from supabase_migrations.schema_migrations")


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", include_in_schema=False)
async def metrics(registry: AppMetrics) -> Response:
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/health/ready")
async def ready(engine: Engine, expected: ExpectedMigrations, settings: AppSettings) -> JSONResponse:
    checks = {"database": "ok", "migrations": "ok"}
    try:
        async with asyncio.timeout(3), engine.connect() as conn:
            tracked = (await conn.execute(_TRACKED)).scalar_one()
            applied = set((await conn.execute(_APPLIED)).scalars()) if tracked else set()
    except (SQLAlchemyError, TimeoutError, OSError):
        checks["database"] = "unreachable"
        checks["migrations"] = "unknown"
    else:
        pending = [migration.path.name for migration in expected if migration.version not in applied]
        if pending:
            checks["migrations"] = "pending: " + ", ".join(pending)
    failing = {name: state for name, state in checks.items() if state != "ok"}
    # The model settings were validated at start-up (and the local embedding model loaded):
    # readiness reports which ones are in force rather than calling a paid API every probe.
    models = {
        "llm": f"openai-compatible:{settings.chat_model}" if settings.llm_configured else "extractive",
        "embeddings": settings.embeddings,
    }
    if not failing:
        return JSONResponse({"status": "ready", "checks": checks, "models": models})
    detail = "; ".join(f"{name} {state}" for name, state in failing.items())
    return JSONResponse(
        {"status": "unavailable", "error": "not_ready", "detail": detail, "checks": checks}, status_code=503
    )
