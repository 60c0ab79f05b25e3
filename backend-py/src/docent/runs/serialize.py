"""Graph output to JSON, as the Agent Server writes it (LangChain messages via `model_dump()`)."""

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel


def _default(value: object) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def dumps(value: object) -> str:
    """Compact JSON on one line (SSE data must not span lines)."""
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))


def jsonable(value: object) -> Any:
    return json.loads(dumps(value))
