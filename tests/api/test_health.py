"""Liveness and readiness against real databases: ready, behind on migrations, unreachable."""

import uuid
from collections.abc import Callable

import httpx
import psycopg.errors
import pytest
import sqlalchemy.exc
from fastapi import FastAPI

from docent.main import create_app
from docent.settings import Settings
from tests.conftest import serve_in_process
from tests.helpers import claims, hs256


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


async def test_requests_while_the_database_is_down_answer_503_in_words(
    make_settings: Callable[..., Settings], tmp_path: object
) -> None:
    settings = make_settings(database_url=f"postgresql://postgres@/postgres?host={tmp_path}")
    headers = {"Authorization": f"Bearer {hs256(claims(uuid.uuid4()))}"}
    async with serve_in_process(create_app(settings)) as http:
        for method, path in (("GET", "/documents"), ("POST", "/threads"), ("GET", "/me")):
            response = await http.request(method, path, headers=headers, json={} if method == "POST" else None)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["retry-after"] == "5"
            assert response.json() == {
                "error": "database_unavailable",
                "detail": "The database is unavailable; nothing was changed. Try again in a few seconds.",
            }


async def test_a_failed_statement_is_a_500_not_an_outage(client: httpx.AsyncClient, app: FastAPI) -> None:
    async def deadlocked() -> None:
        raise sqlalchemy.exc.OperationalError("update", {}, psycopg.errors.DeadlockDetected())

    app.add_api_route("/deadlock", deadlocked)
    response = await client.get("/deadlock")
    assert (response.status_code, response.json()) == (500, {"error": "internal", "detail": "internal server error"})


async def test_request_traffic_goes_to_request_database_url_when_set(
    make_settings: Callable[..., Settings], tmp_path: object
) -> None:
    # The checkpointer's DATABASE_URL is up; the (transaction-pooler) URL for requests is not.
    settings = make_settings(request_database_url=f"postgresql://postgres@/postgres?host={tmp_path}")
    headers = {"Authorization": f"Bearer {hs256(claims(uuid.uuid4()))}"}
    async with serve_in_process(create_app(settings)) as http:
        assert (await http.get("/documents", headers=headers)).status_code == 503
        assert (await http.get("/health/ready")).json()["checks"]["database"] == "unreachable"


def test_request_database_url_needs_database_url() -> None:
    with pytest.raises(ValueError, match="REQUEST_DATABASE_URL needs DATABASE_URL"):
        Settings(request_database_url="postgresql://postgres@pooler:6543/postgres")
