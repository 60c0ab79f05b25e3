"""One structured line per request, with the user when known and never the token."""

import json
import logging
import uuid

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from docent.api.request_log import RequestLogMiddleware
from docent.log import JsonFormatter


def _request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "docent.request"]


async def test_one_line_per_request_with_the_user_and_no_secret(
    client: httpx.AsyncClient, user: tuple[uuid.UUID, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    user_id, headers = user
    caplog.set_level(logging.INFO)
    response = await client.get("/me", headers={**headers, "X-Request-ID": "req-123"})
    await client.get("/me", headers={"Authorization": "Bearer not.a.token"})

    first, second = _request_lines(caplog)
    assert first["method"] == "GET"
    assert first["path"] == "/me"
    assert first["status"] == 200
    assert first["request_id"] == "req-123" == response.headers["x-request-id"]
    assert first["user_id"] == str(user_id)
    assert isinstance(first["duration_ms"], float)
    assert (second["status"], second["user_id"]) == (401, None)
    token = headers["Authorization"].split()[1]
    assert token not in caplog.text
    assert "not.a.token" not in caplog.text


async def test_unsafe_request_ids_are_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "bad id\twith\ttabs"})
    assert response.headers["x-request-id"] != "bad id\twith\ttabs"
    assert len(response.headers["x-request-id"]) == 32


async def test_an_unexpected_error_is_a_json_500_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(_: Request) -> Response:
        raise RuntimeError("secret internals")

    app = Starlette(routes=[Route("/boom", broken)], middleware=[Middleware(RequestLogMiddleware)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        response = await http.get("/boom", headers={"X-Request-ID": "r-1"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal", "detail": "internal server error"}
    assert response.headers["x-request-id"] == "r-1"
    assert "secret internals" not in response.text
    errors = [r for r in caplog.records if r.message == "unhandled_error"]
    assert len(errors) == 1
    assert json.loads(JsonFormatter().format(errors[0]))["request_id"] == "r-1"


def test_formatter_keeps_extras_and_exceptions() -> None:
    error = ValueError("boom")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("here",), (ValueError, error, None))
    record.__dict__["user_id"] = "u1"
    line = json.loads(JsonFormatter().format(record))
    assert (line["msg"], line["user_id"], line["level"]) == ("failed here", "u1", "error")
    assert "ValueError: boom" in line["exc"]
