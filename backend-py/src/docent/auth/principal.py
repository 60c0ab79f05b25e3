"""Who is calling: built from a verified token, never from request data."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: UUID
    email: str | None
    claims: Mapping[str, Any]
