"""A thread's next load takes the messages its last run left, and only while they are what
the database holds at that checkpoint."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from psycopg_pool import AsyncConnectionPool

from docent.db.checkpoint_saver import LatestStateSaver
from docent.db.checkpoints import open_checkpoints
from docent.db.engine import libpq_url
from docent.graph import build_graph
from docent.graph.build import Graph
from docent.graph.models import ExtractiveChatModel
from docent.runs.serialize import jsonable
from docent.settings import Settings
from tests.agent import new_thread, run_body, upload_manual
from tests.conftest import InProcess
from tests.scripted_openai import Reply, ScriptedOpenAI


@pytest.fixture
def replays(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The threads whose messages were rebuilt from the database (LangGraph's replay)."""
    replayed: list[str] = []
    replay = AsyncPostgresSaver.aget_delta_channel_history

    async def counted(self: AsyncPostgresSaver, *, config: RunnableConfig, channels: Any) -> Any:
        replayed.append(config["configurable"]["thread_id"])
        return await replay(self, config=config, channels=channels)

    monkeypatch.setattr(AsyncPostgresSaver, "aget_delta_channel_history", counted)
    return replayed


@asynccontextmanager
async def _replica(settings: Settings) -> AsyncIterator[Graph]:
    """The graph as another replica holds it: nothing remembered, everything from the database."""
    assert settings.database_url is not None
    async with open_checkpoints(libpq_url(settings.database_url.get_secret_value()), max_size=2) as other:
        yield build_graph(ExtractiveChatModel(), checkpointer=other.saver)


async def _ask(agent: InProcess, headers: dict[str, str], thread_id: str, question: str) -> dict[str, Any]:
    response = await agent.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body(question))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _state(agent: InProcess, headers: dict[str, str], thread_id: str) -> dict[str, Any]:
    response = await agent.http.get(f"/threads/{thread_id}/state", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_thread_loads_its_last_runs_messages_as_the_database_holds_them(
    agent: InProcess,
    user: tuple[Any, dict[str, str]],
    model_server: ScriptedOpenAI,
    llm_settings: Callable[..., Settings],
    replays: list[str],
) -> None:
    _, headers = user
    await upload_manual(agent, headers)
    thread_id = await new_thread(agent.http, headers)
    await _ask(agent, headers, thread_id, "What does VACUUM do?")
    # A turn of two model calls: the model searches again before it answers.
    model_server.script.extend([Reply(tool_calls=[("search_documents", {"query": "B-tree", "k": 2})]), Reply("B [1]")])
    await _ask(agent, headers, thread_id, "And indexes?")
    await _ask(agent, headers, thread_id, "What does autovacuum do?")
    replays.clear()

    state = await _state(agent, headers, thread_id)

    assert replays == []  # the last run's messages, not rebuilt
    async with _replica(llm_settings()) as replica:
        stored = await replica.aget_state({"configurable": {"thread_id": thread_id}})
    assert replays == [thread_id]
    assert state["values"]["messages"] == jsonable(stored.values["messages"])
    assert len(state["values"]["messages"]) == 4 + 6 + 4  # the second turn: two searches, two model calls


async def test_a_checkpoint_written_elsewhere_since_is_read_from_the_database(
    agent: InProcess, user: tuple[Any, dict[str, str]], llm_settings: Callable[..., Settings], replays: list[str]
) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)
    await _ask(agent, headers, thread_id, "What does VACUUM do?")
    async with _replica(llm_settings()) as replica:
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        await replica.aupdate_state(config, {"messages": [AIMessage("Written by another replica.", id="other")]})
    replays.clear()

    messages = (await _state(agent, headers, thread_id))["values"]["messages"]
    assert messages[-1]["content"] == "Written by another replica."
    assert replays == [thread_id]
    answer = await _ask(agent, headers, thread_id, "And then?")
    assert [m["content"] for m in answer["messages"]][:5] == [m["content"] for m in messages]


async def test_a_run_that_fails_leaves_nothing_to_take(
    agent: InProcess, user: tuple[Any, dict[str, str]], model_server: ScriptedOpenAI, replays: list[str]
) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)
    await _ask(agent, headers, thread_id, "What does VACUUM do?")
    model_server.script.append(Reply(failure="status_500"))
    failed = await _ask(agent, headers, thread_id, "And indexes?")
    assert failed["__error__"]["error"] == "model_error"
    replays.clear()

    messages = (await _state(agent, headers, thread_id))["values"]["messages"]

    assert replays == [thread_id]
    assert messages[-1]["content"] == "And indexes?"  # kept by the failed run's own checkpoint


@pytest.fixture
def offline_saver(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], LatestStateSaver]:
    """A saver whose database work is skipped: only its own bookkeeping runs."""

    async def put(_: AsyncPostgresSaver, config: RunnableConfig, *args: Any) -> RunnableConfig:
        return config

    async def replay(_: AsyncPostgresSaver, *, config: RunnableConfig, channels: Any) -> Any:
        return {name: {"writes": []} for name in channels}

    monkeypatch.setattr(AsyncPostgresSaver, "aput", put)
    monkeypatch.setattr(AsyncPostgresSaver, "aget_delta_channel_history", replay)

    def make(budget_bytes: int) -> LatestStateSaver:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool("", open=False)
        return LatestStateSaver(pool, serde=JsonPlusSerializer(), budget_bytes=budget_bytes)

    return make


async def _run(saver: LatestStateSaver, thread_id: str, run_id: str, text: str) -> str:
    """A run that writes one checkpoint and ends well with one message; its checkpoint id."""
    checkpoint = empty_checkpoint()
    config: RunnableConfig = {
        "configurable": {"thread_id": thread_id, "checkpoint_ns": ""},
        "metadata": {"run_id": run_id},
    }
    await saver.aput(config, checkpoint, {}, {})
    saver.run_ended(run_id=run_id, thread_id=thread_id, values={"messages": [HumanMessage(text, id=run_id)]})
    return checkpoint["id"]


async def _loaded(saver: LatestStateSaver, thread_id: str, checkpoint_id: str) -> list[Any] | None:
    config: RunnableConfig = {
        "configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}
    }
    history = (await saver.aget_delta_channel_history(config=config, channels=["messages"]))["messages"]
    return history["seed"].value if "seed" in history else None


async def test_the_least_recently_used_threads_go_once_the_budget_is_spent(
    offline_saver: Callable[[int], LatestStateSaver],
) -> None:
    one_thread = 2048 + len("one")
    saver = offline_saver(2 * one_thread)
    first, second = await _run(saver, "a", "r1", "one"), await _run(saver, "b", "r2", "two")
    assert await _loaded(saver, "a", first) == [HumanMessage("one", id="r1")]  # and now the most recent
    third = await _run(saver, "c", "r3", "thr")
    assert await _loaded(saver, "b", second) is None
    assert await _loaded(saver, "a", first) is not None
    assert await _loaded(saver, "c", third) is not None
    assert await _loaded(saver, "a", "an older checkpoint") is None

    nothing_kept = offline_saver(0)
    assert await _loaded(nothing_kept, "a", await _run(nothing_kept, "a", "r4", "one")) is None


async def test_each_load_gets_a_list_of_its_own(offline_saver: Callable[[int], LatestStateSaver]) -> None:
    saver = offline_saver(1 << 20)
    checkpoint_id = await _run(saver, "a", "r1", "one")
    first = await _loaded(saver, "a", checkpoint_id)
    assert first is not None
    first.append(AIMessage("appended by a run"))
    assert await _loaded(saver, "a", checkpoint_id) == [HumanMessage("one", id="r1")]


async def test_a_deleted_thread_is_forgotten(
    offline_saver: Callable[[int], LatestStateSaver], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def deleted(_: AsyncPostgresSaver, thread_id: str) -> None:
        return None

    monkeypatch.setattr(AsyncPostgresSaver, "adelete_thread", deleted)
    saver = offline_saver(1 << 20)
    checkpoint_id = await _run(saver, "a", "r1", "one")
    await saver.adelete_thread("a")
    assert await _loaded(saver, "a", checkpoint_id) is None


async def test_one_threads_slow_statement_does_not_hold_up_another_threads_checkpoints(settings: Settings) -> None:
    """LangGraph's saver queues every statement behind one lock; from a pool it need not
    (`Checkpoints` replaces the lock)."""
    assert settings.database_url is not None
    url = libpq_url(settings.database_url.get_secret_value())
    async with (
        open_checkpoints(url, max_size=3) as checkpoints,
        await psycopg.AsyncConnection.connect(url) as locker,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as probe,
    ):
        saver = checkpoints.saver
        config: RunnableConfig = {"configurable": {"thread_id": "slow", "checkpoint_ns": ""}}
        checkpoint = empty_checkpoint()
        await saver.aput(config, checkpoint, {}, {})
        await locker.execute("select 1 from langgraph.checkpoints where thread_id = 'slow' for update")
        blocked = asyncio.create_task(saver.aput(config, checkpoint, {}, {}))  # waits for the row lock
        await _until_a_checkpoint_write_waits_for_a_lock(probe)

        other = await asyncio.wait_for(
            saver.aget_tuple({"configurable": {"thread_id": "other", "checkpoint_ns": ""}}), timeout=10
        )

        assert other is None
        assert not blocked.done()
        await locker.rollback()
        await blocked


async def _until_a_checkpoint_write_waits_for_a_lock(conn: psycopg.AsyncConnection[Any]) -> None:
    """Return once a write to the checkpoints waits for a row lock (`conn` in autocommit: a
    transaction would see one snapshot of `pg_stat_activity`)."""
    query = (
        "select count(*) from pg_stat_activity"
        " where wait_event_type = 'Lock' and query ~ '^\\s*INSERT INTO checkpoints'"
    )
    async with asyncio.timeout(10):
        while not (await (await conn.execute(query)).fetchone() or (0,))[0]:
            pass  # each probe is a round trip to the database
