"""A live run's cancel: once, and not after its time limit, so that the exit write is not cut short."""

import asyncio
import uuid

import pytest

from docent.runs.live import LiveRun


async def test_a_run_is_cancelled_once_so_its_final_write_completes() -> None:
    started, writing, release = asyncio.Event(), asyncio.Event(), asyncio.Event()
    written: list[bool] = []

    async def run() -> None:
        live.begin()  # as the run manager's task does first
        started.set()
        try:
            await asyncio.Event().wait()  # the graph, working
        except asyncio.CancelledError:
            writing.set()
            await release.wait()  # the checkpoint write LangGraph makes as a cancelled run exits
            written.append(True)
            raise

    live = LiveRun(run_id=uuid.uuid4(), thread_id=uuid.uuid4(), user_id=uuid.uuid4())
    live.task = asyncio.create_task(run())
    await started.wait()
    live.cancel()
    await writing.wait()
    live.cancel()  # a second canceller (an interrupting run, a disconnect, a shutdown)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await live.task
    assert written == [True]


async def test_a_cancel_after_the_time_limit_struck_leaves_the_exit_write_alone() -> None:
    writing, release = asyncio.Event(), asyncio.Event()
    written: list[bool] = []
    live = LiveRun(run_id=uuid.uuid4(), thread_id=uuid.uuid4(), user_id=uuid.uuid4())

    async def run() -> None:
        live.begin()
        async with asyncio.timeout(0) as deadline:  # strikes at the first wait
            live.deadline = deadline
            try:
                await asyncio.Event().wait()  # the graph, working
            except asyncio.CancelledError:
                writing.set()
                await release.wait()  # the checkpoint write as the timed-out run exits
                written.append(True)
                raise

    live.task = asyncio.create_task(run())
    await writing.wait()
    live.cancel()  # the user's cancel, landing in that write
    release.set()
    with pytest.raises(TimeoutError):
        await live.task
    assert written == [True]
