"""Graph output to JSON, as the Agent Server writes it (LangChain messages via `model_dump()`).

orjson: every `values` event carries the whole conversation, and the standard library took
about 1 ms for a 40-turn thread, orjson 0.4."""

import json
from typing import Any

import orjson
from pydantic import BaseModel

_OPTIONS = orjson.OPT_NON_STR_KEYS  # as the standard library, keys that are not strings become strings


def _default(value: object) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, (set, frozenset)):
        return list(value)
    return repr(value)


def dumps(value: object) -> str:
    """Compact JSON on one line (SSE data must not span lines)."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits (from a client's metadata, say)
        return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))


def jsonable(value: object) -> Any:
    return orjson.loads(dumps(value))
