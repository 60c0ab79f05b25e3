"""Every error leaves as `{"error": code, "detail": message}`; stacks go to the log only
(unexpected errors are answered by `docent.api.request_log`)."""

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from docent.db.engine import MAYBE_UNAVAILABLE, unavailable
from docent.errors import DocentError, TooManyRequests

logger = logging.getLogger(__name__)
_TYPE_TAG = re.compile(r"[a-z-]+\[.*\]|str|int|float|bool|none")
DATABASE_UNAVAILABLE = "The database is unavailable; nothing was changed. Try again in a few seconds."


def error_response(status: int, code: str, detail: str, **extra: object) -> JSONResponse:
    headers = {"WWW-Authenticate": _challenge(code)} if status == 401 else None
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status, headers=headers)


def _challenge(code: str) -> str:
    # RFC 6750 §3: no error attribute when the request simply lacked credentials.
    if code == "missing_token":
        return "Bearer"
    return 'Bearer error="invalid_request"' if code == "invalid_request" else 'Bearer error="invalid_token"'


async def _domain_error(_: Request, exc: DocentError) -> JSONResponse:
    response = error_response(exc.status, exc.code, exc.detail)
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [_problem(error) for error in exc.errors()]
    detail = "; ".join(f"{problem['field']}: {problem['message']}" for problem in problems)
    return error_response(422, "invalid_request", detail, errors=problems)


def _problem(error: dict[str, Any]) -> dict[str, str]:
    # Without pydantic's names for the members of a union (`literal['values',...]`, `list[...]`).
    location = [str(part) for part in error.get("loc", ()) if not _TYPE_TAG.fullmatch(str(part))]
    if error.get("type") == "json_invalid":
        context = error.get("ctx")
        reason = context.get("error") if isinstance(context, dict) else None
        return {"field": location[0] if location else "body", "message": f"invalid JSON ({reason})"}
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")  # a validator's own words
    if "Expected UploadFile" in message:  # a form field where a file belongs; the words name a class
        message = "must be a file, sent with a file name"
    return {"field": ".".join(location), "message": message}


async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    if not unavailable(exc):
        raise exc  # a statement's own failure (a deadlock, say): a 500, logged with its stack
    # Expected during a restart or failover: one line each, not a stack per request.
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    logger.warning("database_unavailable", extra={"path": request.url.path, "cause": type(cause).__name__})
    response = error_response(503, "database_unavailable", DATABASE_UNAVAILABLE)
    response.headers["Retry-After"] = "5"
    return response


def add_exception_handlers(app: FastAPI) -> None:
    app.exception_handler(DocentError)(_domain_error)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(HTTPException)(_http_error)
    for error in MAYBE_UNAVAILABLE:
        app.exception_handler(error)(_database_unavailable)
