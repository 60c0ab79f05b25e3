"""One structured log line per request, an `X-Request-ID` on every response, and the
last-resort 500: an unexpected error is logged once, with its stack and the request id,
and the client gets `{"error": "internal", ...}` and nothing internal."""

import json
import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docent.log import request_id_var

log = logging.getLogger("docent.request")
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_INTERNAL_ERROR = json.dumps({"error": "internal", "detail": "internal server error"}).encode()


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if status is not None:
                raise  # the response has begun (or another layer answered): not ours to handle
            log.exception("unhandled_error", extra={"path": scope["path"], "request_id": request_id})
            await _send_internal_error(send_with_id)
        finally:
            duration = time.perf_counter() - started
            _observe(scope, status, duration)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                    "request_id": request_id,
                    "user_id": scope.get("state", {}).get("user_id"),
                },
            )
            request_id_var.reset(token)


def _observe(scope: Scope, status: int | None, seconds: float) -> None:
    metrics = scope.get("state", {}).get("metrics")
    if metrics is None:
        return
    # The route template, not the path: one series per route, whatever the ids in it.
    route = getattr(scope.get("route"), "path", None) or "unmatched"
    method = scope["method"]
    metrics.requests.labels(method, route, str(status or 500)).inc()
    metrics.request_seconds.labels(method, route).observe(seconds)


async def _send_internal_error(send: Send) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_INTERNAL_ERROR)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": _INTERNAL_ERROR})


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _SAFE_REQUEST_ID.fullmatch(value):
            return str(value, "ascii")
    return uuid.uuid4().hex
