"""Server-sent events as the LangGraph Agent Server writes them, and the streamed JSON of
`runs/wait`; both keep idle connections alive while the model thinks."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from docent.runs.live import Event, LiveRun
from docent.runs.serialize import dumps

__all__ = ["dumps", "encode", "event_stream", "final_json"]

HEARTBEAT_SECONDS = 10.0
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def encode(event: str, data: Any) -> bytes:
    return f"event: {event}\r\ndata: {dumps(data)}\r\n\r\n".encode()


async def _events(queue: asyncio.Queue[Event | None]) -> AsyncIterator[Event | None]:
    """The run's events, with None standing for a quiet interval; ends with the run."""
    while True:
        try:
            event = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
        except TimeoutError:
            yield None
            continue
        if event is None:
            return
        yield event


async def event_stream(
    live: LiveRun, queue: asyncio.Queue[Event | None], *, cancel_on_disconnect: bool
) -> AsyncIterator[bytes]:
    try:
        async for event in _events(queue):
            yield b": heartbeat\r\n\r\n" if event is None else encode(*event)
    finally:
        _stop_listening(live, queue, cancel=cancel_on_disconnect)


async def final_json(
    live: LiveRun, queue: asyncio.Queue[Event | None], *, cancel_on_disconnect: bool = False
) -> AsyncIterator[bytes]:
    """Newlines while the run works (JSON ignores them), then its final values or `__error__`."""
    try:
        async for event in _events(queue):
            if event is None:
                yield b"\n"
    finally:
        _stop_listening(live, queue, cancel=cancel_on_disconnect)
    yield _dumps_final(live)


def _stop_listening(live: LiveRun, queue: asyncio.Queue[Event | None], *, cancel: bool) -> None:
    """The client is gone, or the run has ended; with `cancel`, a run still going is cancelled."""
    live.unlisten(queue)
    if cancel and not live.done.is_set():
        live.cancel()


def _dumps_final(live: LiveRun) -> bytes:
    body: Any = {"__error__": live.error} if live.error else (live.values or {})
    return dumps(body).encode()
