"""Liveness and readiness against real databases: ready, behind on migrations, unreachable."""

from collections.abc import Callable

import httpx

from docent.main import create_app
from docent.settings import Settings
from tests.conftest import serve_in_process


async def _get(settings: Settings, path: str) -> httpx.Response:
    async with serve_in_process(create_app(settings)) as http:
        return await http.get(path)


async def test_health_needs_nothing(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_when_database_is_migrated(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok"},
        "models": {"llm": "extractive", "embeddings": "local"},
    }


async def test_not_ready_names_pending_migrations(make_settings: Callable[..., Settings], empty_database: str) -> None:
    response = await _get(make_settings(database_url=empty_database), "/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"].startswith("pending: 20261123000000_supabase_compat.sql")
    assert body["error"] == "not_ready"


async def test_not_ready_when_database_is_unreachable(make_settings: Callable[..., Settings], tmp_path: object) -> None:
    settings = make_settings(database_url=f"postgresql://postgres@/postgres?host={tmp_path}")
    response = await _get(settings, "/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "unreachable", "migrations": "unknown"}
    assert "postgres" not in response.json()["detail"]  # nothing internal leaks
