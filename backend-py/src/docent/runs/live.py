"""A run in flight in this process: its task, and the events it broadcasts to listeners."""

import asyncio
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

Event = tuple[str, Any]
# Once the model has answered, the run's timeout leaves at least this long for the write
# that holds the turn: a turn answered just before its deadline is not lost to it.
ANSWER_WRITE_SECONDS = 30.0


@dataclass(eq=False)
class LiveRun:
    run_id: UUID
    thread_id: UUID
    user_id: UUID
    queued: bool = False  # admitted while another run held the thread (enqueue / interrupt)
    waits_for: "list[LiveRun]" = field(default_factory=list)  # the thread's earlier runs, until they end
    task: "asyncio.Task[None] | None" = None
    values: dict[str, Any] | None = None  # the latest full state
    # The question's embedding for the first search, started as the run was admitted.
    embedding: "asyncio.Future[list[float]] | None" = None
    error: dict[str, str] | None = None
    started: bool = False  # its task has begun: before, cancelling the task would skip recording its end
    cancelled: bool = False
    finishing: bool = False  # recording its outcome: cancelling now would lose that
    deadline: asyncio.Timeout | None = None  # the run's time limit, while it runs
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _listeners: list[asyncio.Queue[Event | None]] = field(default_factory=list)

    def listen(self) -> asyncio.Queue[Event | None]:
        """A queue of this run's events from now on; None marks the end."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        if self.done.is_set():
            queue.put_nowait(None)
        else:
            self._listeners.append(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[Event | None]) -> None:
        if queue in self._listeners:
            self._listeners.remove(queue)

    def publish(self, event: str, data: Any) -> None:
        for queue in self._listeners:
            queue.put_nowait((event, data))

    def close(self) -> None:
        self.done.set()
        for queue in self._listeners:
            queue.put_nowait(None)
        self._listeners.clear()

    def answered(self) -> None:
        """The model has answered: the checkpoint written next holds the turn, and a cancel
        now would only cut that write short, so the run is past cancelling, and its time
        limit leaves that write `ANSWER_WRITE_SECONDS`."""
        self.finishing = True
        if self.deadline is not None and (when := self.deadline.when()) is not None:
            self.deadline.reschedule(max(when, asyncio.get_running_loop().time() + ANSWER_WRITE_SECONDS))

    def begin(self) -> None:
        """Called first by the run's task: from now on a cancel cancels the task. A run cancelled
        before (its task had not run a line) ends here, as if cancelled at this point."""
        self.started = True
        if self.cancelled:
            raise asyncio.CancelledError

    def cancel(self, *, error: dict[str, str] | None = None) -> None:
        """Cancel the run once: a second cancel could land in the checkpoint write that the
        first one set off, and lose the turn. `error`, when the cancel is not the user's
        own choice, is what the run's listeners are told as it ends."""
        struck = self.deadline is not None and self.deadline.expired()  # the time limit cancelled it already
        if self.finishing or struck or self.done.is_set() or self.cancelled or self.task is None:
            return
        self.cancelled = True
        self.error = error
        if self.started:
            self.task.cancel()  # else the task, once begun, finds `cancelled` and ends at once
