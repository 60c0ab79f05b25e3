"""JSON request bodies, read strictly on every route (`APIRouter(route_class=StrictJSONRoute)`).

Python's `json`, which FastAPI uses, accepts what PostgreSQL and LangGraph cannot store or
read back: `NaN` and `Infinity`, unpaired surrogates, numbers too large for a double,
U+0000 in strings, and nesting deep enough to pass serialisers' depth limits. Such a value
failed deep inside a request (a 500), or, in a run's metadata, was stored and then broke
every later read of the thread. So bodies are parsed with orjson, which refuses the first
three and invalid UTF-8, and then checked for U+0000 and depth. Every refusal is FastAPI's
own 422 for invalid JSON (`invalid_request`, "invalid JSON (...)").
"""

import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

MAX_DEPTH = 32  # objects and arrays within one another; the deepest body Docent takes needs 6


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            value = orjson.loads(body)  # its JSONDecodeError is json's: FastAPI answers 422
            problem = _problem(value, nul_escaped=b"\\u0000" in body)
            if problem is not None:
                raise json.JSONDecodeError(problem, body.decode(), 0)
            self._json = value
        return self._json


def _problem(value: Any, *, nul_escaped: bool) -> str | None:
    """What makes a parsed body unacceptable, if anything. U+0000 can only arrive escaped, so
    strings are looked at only when the body holds that escape."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return f"nested more than {MAX_DEPTH} levels deep"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
        elif nul_escaped and isinstance(item, str) and "\x00" in item:
            return "a string holds the character U+0000, which cannot be stored"
    return None
