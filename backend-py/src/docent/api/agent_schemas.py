"""Request bodies and response shapes of the LangGraph Agent Server routes (threads, runs).

Fields the official `langgraph-sdk` client sends but Docent does not act on are ignored when
empty and refused when set, so a request never silently means something else. Exceptions,
because they change nothing here: `stream_subgraphs` (the graph has none), `on_completion`
(for stateless runs) and `langsmith_tracer` (tracing is the service's setting).
"""

import json
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from langgraph.checkpoint.base import CheckpointMetadata
from langgraph.types import StateSnapshot
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from docent.db.models import Run, Thread
from docent.runs.manager import Durability, Strategy, StreamMode
from docent.runs.serialize import jsonable

MAX_METADATA_BYTES = 8192
MAX_CHECKPOINT_ID = 64  # LangGraph's are UUIDs (36 characters)
_UNSUPPORTED_RUN_FIELDS = (
    "command",
    "checkpoint",
    "checkpoint_id",
    "interrupt_before",
    "interrupt_after",
    "webhook",
    "after_seconds",
    "feedback_keys",
    "config",
    "context",
    "stream_resumable",  # a stream cannot be resumed here; `join` waits for a run's outcome
)
# A checkpoint's own metadata (`parents`, `step`, ...): a run's metadata joins it, and a value
# of another shape there breaks reading the thread's history.
_CHECKPOINT_METADATA_KEYS = frozenset(CheckpointMetadata.__annotations__)
MAX_OFFSET = 2**63 - 1  # PostgreSQL's bigint


def metadata_too_large(value: dict[str, Any]) -> bool:
    return len(json.dumps(value)) > MAX_METADATA_BYTES


def _check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if metadata_too_large(value):
        raise ValueError(f"metadata must be at most {MAX_METADATA_BYTES} bytes as JSON")
    return value


def _check_run_metadata(value: dict[str, Any]) -> dict[str, Any]:
    reserved = sorted(_CHECKPOINT_METADATA_KEYS.intersection(value))
    if reserved:
        raise ValueError(f"these keys are LangGraph's own checkpoint metadata: {', '.join(reserved)}")
    return _check_metadata(value)


def _beyond_the_root(checkpoint: Any) -> Any:
    """What a `checkpoint` asks for beyond the thread's root graph (Docent's only): nothing
    for `{"checkpoint_ns": ""}`, with or without the thread's id or empty fields."""
    if not isinstance(checkpoint, dict):
        return checkpoint
    return {key: value for key, value in checkpoint.items() if value and key not in ("thread_id", "checkpoint_ns")}


def _refuse_set(extra: dict[str, Any] | None, names: tuple[str, ...]) -> None:
    unsupported = [name for name in names if (extra or {}).get(name)]  # None, false, [] and {} ask for nothing
    if unsupported:
        raise ValueError(f"not supported by Docent: {', '.join(unsupported)}")


class ThreadCreate(BaseModel):
    model_config = ConfigDict(extra="allow")

    thread_id: UUID | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"

    _metadata = field_validator("metadata")(_check_metadata)

    @model_validator(mode="after")
    def _supported(self) -> "ThreadCreate":
        _refuse_set(self.model_extra, ("supersteps", "ttl"))
        return self


class ThreadPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metadata: dict[str, Any] = Field(default_factory=dict)

    _metadata = field_validator("metadata")(_check_metadata)


class ThreadSearch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metadata: dict[str, Any] = Field(default_factory=dict)
    values: dict[str, Any] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    ids: list[UUID] | None = Field(default=None, max_length=1000)
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at", "state_updated_at"] = "updated_at"
    sort_order: Literal["asc", "desc"] = "desc"

    @field_validator("values")
    @classmethod
    def _no_values_filter(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value:
            raise ValueError("filtering threads by values is not supported; filter by metadata")
        return value


class HistoryQuery(BaseModel):
    model_config = ConfigDict(extra="allow")

    limit: int = Field(default=10, ge=1, le=1000)
    before: str | dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _supported(self) -> "HistoryQuery":
        _refuse_set({"checkpoint": _beyond_the_root((self.model_extra or {}).get("checkpoint"))}, ("checkpoint",))
        return self

    def before_id(self) -> str | None:
        if isinstance(self.before, dict):
            configurable = self.before.get("configurable", self.before)
            value = configurable.get("checkpoint_id") if isinstance(configurable, dict) else None
            return str(value) if value else None
        return self.before


class StateAt(BaseModel):
    """`POST /threads/{id}/state/checkpoint`: the SDK's `get_state(checkpoint=...)`."""

    model_config = ConfigDict(extra="ignore")

    checkpoint: dict[str, Any]

    @field_validator("checkpoint")
    @classmethod
    def _names_one(cls, value: dict[str, Any]) -> dict[str, Any]:
        checkpoint_id = value.get("checkpoint_id")
        if not isinstance(checkpoint_id, str) or not 0 < len(checkpoint_id) <= MAX_CHECKPOINT_ID:
            raise ValueError("checkpoint must name a checkpoint_id")
        return value


class InputMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "human"] | None = None
    type: Literal["human"] | None = None
    content: str | list[dict[str, Any]]

    @model_validator(mode="after")
    def _from_the_user(self) -> "InputMessage":
        if self.role is None and self.type is None:
            raise ValueError("a message needs role 'user' (or type 'human')")
        return self

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\n".join(str(block.get("text", "")) for block in self.content if block.get("type") == "text")


class RunInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[InputMessage] = Field(min_length=1, max_length=1)


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="allow")

    assistant_id: str
    input: RunInput
    metadata: dict[str, Any] = Field(default_factory=dict)
    stream_mode: StreamMode | list[StreamMode] = "values"
    multitask_strategy: Strategy | Literal["rollback"] = "reject"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    durability: Durability | None = None  # None: DEFAULT_DURABILITY

    _metadata = field_validator("metadata")(_check_run_metadata)

    @model_validator(mode="after")
    def _supported(self) -> "RunCreate":
        extra = dict(self.model_extra or {})
        extra["checkpoint"] = _beyond_the_root(extra.get("checkpoint"))
        _refuse_set(extra, _UNSUPPORTED_RUN_FIELDS)
        # LangGraph's older name for durability: a checkpoint after every step, or at the end.
        checkpoint_during = extra.get("checkpoint_during")
        if checkpoint_during is not None:
            if not isinstance(checkpoint_during, bool) or self.durability is not None:
                raise ValueError("checkpoint_during must be true or false, and not sent with durability")
            self.durability = "async" if checkpoint_during else "exit"
        if self.multitask_strategy == "rollback":
            raise ValueError("multitask_strategy 'rollback' is not supported; use reject, enqueue or interrupt")
        return self

    def stream_modes(self) -> tuple[StreamMode, ...]:
        modes = [self.stream_mode] if isinstance(self.stream_mode, str) else self.stream_mode
        return tuple(dict.fromkeys(modes)) or ("values",)


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=100)
    score: float | None = Field(default=None, allow_inf_nan=False)
    comment: str | None = Field(default=None, max_length=4000)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def thread_json(thread: Thread, *, values: dict[str, Any] | None = None) -> dict[str, Any]:
    status = thread.status
    if status == "busy" and thread.locked_until is not None and thread.locked_until < datetime.now(UTC):
        status = "idle"  # its run's lease ran out (a replica died mid-run)
    return {
        "thread_id": str(thread.id),
        "created_at": _iso(thread.created_at),
        "updated_at": _iso(thread.updated_at),
        "state_updated_at": _iso(thread.updated_at),
        "metadata": thread.metadata_,
        "config": {},
        "status": status,
        "values": values,
        "interrupts": {},
        "title": thread.title,
    }


def run_json(run: Run) -> dict[str, Any]:
    return {
        "run_id": str(run.id),
        "thread_id": str(run.thread_id),
        "assistant_id": run.assistant_id,
        "created_at": _iso(run.created_at),
        "updated_at": _iso(run.updated_at),
        "status": run.status,
        "metadata": run.metadata_,
        "kwargs": {},
        "multitask_strategy": run.multitask_strategy,
        "error": run.error,
        "usage": {"input_tokens": run.input_tokens, "output_tokens": run.output_tokens},
    }


def _checkpoint(config: Any) -> dict[str, Any] | None:
    configurable = (config or {}).get("configurable", {})
    if not configurable.get("checkpoint_id"):
        return None
    return {
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable["checkpoint_id"],
        "checkpoint_map": configurable.get("checkpoint_map"),
    }


def state_json(snapshot: StateSnapshot) -> dict[str, Any]:
    checkpoint = _checkpoint(snapshot.config)
    parent = _checkpoint(snapshot.parent_config)
    tasks = [
        {
            "id": task.id,
            "name": task.name,
            "path": list(task.path),
            "error": task.error,
            "interrupts": [],
            "checkpoint": None,
            "state": None,
            "result": task.result,
        }
        for task in snapshot.tasks
    ]
    return {
        "values": jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": jsonable(tasks),
        "metadata": jsonable(snapshot.metadata) if checkpoint else None,
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint,
        "parent_checkpoint": parent,
        "interrupts": [],
        "checkpoint_id": checkpoint["checkpoint_id"] if checkpoint else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    }
