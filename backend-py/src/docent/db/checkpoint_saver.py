"""LangGraph's Postgres saver, told each thread's messages as its latest run left them.

Loading a thread rebuilds its `messages` (a `DeltaChannel`) from the last snapshot: two
more queries and a reducer pass over up to `SNAPSHOT_EVERY` writes, about 3 ms of the
event loop per turn, which the turn's first search then queues behind. A run that ends
well hands its final values to `run_ended`, keyed by the checkpoint it wrote last; a load
of exactly that checkpoint (the thread's next turn on this replica, or a read of its
state) takes them instead of replaying. A load of any other checkpoint (one another
replica wrote since, an older one, a thread not run here lately) reads the database as
before: an entry can go unused, never be wrong.

The run is known by the `run_id` in its config's metadata (the Agent Server puts it there
too, and LangGraph copies it into the checkpoint's metadata).

A run's writes are also fenced by its thread's lease: each write (a checkpoint with its
blobs, or a task's writes) is one transaction that first checks, under a row lock, that
the run still holds the thread (`public.hold_thread_for_write`). A run stalled past its
lease while another took the thread over gets `LeaseLost` instead of forking the thread.
Writes without a run id are not fenced (every run of the service has one).
"""

from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, DeltaChannelHistory
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg import AsyncConnection, AsyncCursor
from psycopg.errors import DatabaseError
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from docent.errors import Conflict

_PER_VALUE_BYTES = 2048  # a message's objects beyond its text: ids, metadata, pydantic's own
_HOLD_THREAD = "select public.hold_thread_for_write(%s, %s)"
_LEASE_LOST_STATE = "DC409"  # raised by `hold_thread_for_write`
# The thread and run of the write under way in this task, for `_cursor`.
_writer: ContextVar[tuple[str, str] | None] = ContextVar("checkpoint_writer", default=None)


LEASE_LOST = "Another run took this conversation over while this run was stalled."


class LeaseLost(Conflict):
    """A run's write refused: another run has taken its thread over."""

    default_code = "lease_lost"

    def __init__(self) -> None:
        super().__init__(LEASE_LOST)


@dataclass
class _Latest:
    checkpoint_id: str
    values: dict[str, list[Any]]
    size: int


class LatestStateSaver(AsyncPostgresSaver):
    """The saver, with the latest values of recently active threads kept within
    `budget_bytes` (an estimate: their text, plus a fixed allowance per value)."""

    def __init__(
        self, pool: AsyncConnectionPool[AsyncConnection[Any]], *, serde: SerializerProtocol, budget_bytes: int
    ) -> None:
        super().__init__(pool, serde=serde)
        self._budget = budget_bytes
        self._written: dict[str, str] = {}  # run id → the last top-level checkpoint it wrote
        self._latest: OrderedDict[str, _Latest] = OrderedDict()  # thread id → its latest values, LRU first
        self._bytes = 0

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        with _fenced(config):
            next_config = await super().aput(config, checkpoint, metadata, new_versions)
        run_id = _run_id(config)
        if run_id is not None and not config["configurable"].get("checkpoint_ns"):
            self._written[run_id] = checkpoint["id"]
        return next_config

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        with _fenced(config):
            await super().aput_writes(config, writes, task_id, task_path)

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        writer = _writer.get()
        try:
            async with super()._cursor(pipeline=pipeline) as cursor:
                if writer is not None:
                    # A write's statements are one transaction: a pipeline's implicit one (up
                    # to its sync), or an explicit one without pipeline support. The check
                    # goes first; if it fails, the rest are skipped.
                    await cursor.execute(_HOLD_THREAD, writer)
                yield cursor
        except DatabaseError as error:
            if writer is not None and error.sqlstate == _LEASE_LOST_STATE:
                raise LeaseLost from error
            raise

    def run_ended(self, *, run_id: str, thread_id: str, values: Mapping[str, list[Any]] | None) -> None:
        """Forget what run `run_id` wrote, remembering its thread's `values` (its delta
        channels' final values, or None if it did not end well) at its last checkpoint."""
        checkpoint_id = self._written.pop(run_id, None)
        self.forget(thread_id)
        if checkpoint_id is None or values is None:
            return
        size = _estimated_bytes(values)
        if size > self._budget:
            return
        self._latest[thread_id] = _Latest(checkpoint_id, {name: list(value) for name, value in values.items()}, size)
        self._bytes += size
        while self._bytes > self._budget:
            _, evicted = self._latest.popitem(last=False)
            self._bytes -= evicted.size

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        latest = self._latest.get(thread_id)
        if (
            latest is not None
            and not configurable.get("checkpoint_ns")
            and configurable.get("checkpoint_id") == latest.checkpoint_id
            and set(channels) <= latest.values.keys()
        ):
            self._latest.move_to_end(thread_id)
            # A new list each time: the run that loads it extends its own copy.
            return {name: {"seed": _DeltaSnapshot(list(latest.values[name])), "writes": []} for name in channels}
        return await super().aget_delta_channel_history(config=config, channels=channels)

    async def adelete_thread(self, thread_id: str) -> None:
        self.forget(str(thread_id))
        await super().adelete_thread(thread_id)

    def forget(self, thread_id: str) -> None:
        """Drop what is remembered of a thread deleted in the database (whose checkpoints a
        trigger deleted with it)."""
        dropped = self._latest.pop(thread_id, None)
        if dropped is not None:
            self._bytes -= dropped.size


def _run_id(config: RunnableConfig) -> str | None:
    run_id = (config.get("metadata") or {}).get("run_id")
    return None if run_id is None else str(run_id)


@contextmanager
def _fenced(config: RunnableConfig) -> Iterator[None]:
    """Fence the writes made within by the lease of the run in `config`'s metadata, if any."""
    run_id = _run_id(config)
    token = _writer.set(None if run_id is None else (str(config["configurable"]["thread_id"]), run_id))
    try:
        yield
    finally:
        _writer.reset(token)


def _estimated_bytes(values: Mapping[str, list[Any]]) -> int:
    return sum(
        _PER_VALUE_BYTES + len(str(getattr(item, "content", item))) for value in values.values() for item in value
    )
