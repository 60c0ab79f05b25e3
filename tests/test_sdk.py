"""The official `langgraph-sdk` client against `docent serve` (a real uvicorn process), with
langchain-openai talking to the scripted model server: a conversation end to end, a client
that disconnects mid-answer, cancellation, and a restart in the middle of a conversation."""

import asyncio
import signal
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any, cast

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import ConflictError, NotFoundError

from tests.agent import MANUAL, other_user_headers
from tests.helpers import free_port, serve_process
from tests.scripted_openai import Reply, ScriptedOpenAI

pytestmark = pytest.mark.slow
QUESTION: Any = {"messages": [{"role": "user", "content": "What does VACUUM do?"}]}


@pytest.fixture
def served(database_url: str, model_server: ScriptedOpenAI) -> Iterator[dict[str, Any]]:
    env = {
        "DATABASE_URL": database_url,
        "OPENAI_BASE_URL": model_server.base_url,
        "OPENAI_API_KEY": "sk-scripted",
        "CHAT_MAX_RETRIES": "0",
    }
    port = free_port()
    with tempfile.TemporaryFile("w+") as log, serve_process(env, log=log, port=port) as (base, process):
        yield {"base": base, "env": env, "port": port, "process": process, "log": log}


def _ask(question: str) -> Any:
    return {"messages": [{"role": "user", "content": question}]}


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as resources:
        yield resources


def _upload(base: str, headers: dict[str, str]) -> None:
    response = httpx.post(f"{base}/documents", headers=headers, files={"file": ("manual.md", MANUAL, "text/markdown")})
    document = response.json()
    deadline = time.monotonic() + 60
    while document["status"] not in {"ready", "failed"} and time.monotonic() < deadline:
        time.sleep(0.05)  # polling an observable status while the worker embeds
        document = httpx.get(f"{base}/documents/{document['id']}", headers=headers).json()
    assert document["status"] == "ready", document


async def test_a_conversation_through_the_sdk(
    served: dict[str, Any], database_url: str, model_server: ScriptedOpenAI, stack: AsyncExitStack
) -> None:
    headers = other_user_headers(database_url)
    _upload(served["base"], headers)
    client = await stack.enter_async_context(get_client(url=served["base"], headers=headers, api_key=None))

    thread = await client.threads.create(metadata={"purpose": "sdk test"})
    thread_id = thread["thread_id"]
    created: list[Any] = []
    parts = [
        part
        async for part in client.runs.stream(
            thread_id,
            "docent",
            input=QUESTION,
            stream_mode=["values", "updates", "messages-tuple"],
            on_run_created=created.append,
        )
    ]
    assert parts[0].event == "metadata"
    assert created[0]["run_id"] == parts[0].data["run_id"]
    assert created[0]["thread_id"] == thread_id
    assert {part.event for part in parts} == {"metadata", "values", "updates", "messages"}
    tokens = [p.data[0]["content"] for p in parts if p.event == "messages" and p.data[0]["type"] == "AIMessageChunk"]
    assert "".join(tokens).startswith("According to your documents, VACUUM reclaims")
    assert parts[-1].event == "values"
    assert parts[-1].data["citations"][0]["ref"] == 1

    modes: list[tuple[Any, str]] = [("values", "values"), ("updates", "updates"), ("messages-tuple", "messages")]
    for mode, event in modes:
        events = {
            part.event async for part in client.runs.stream(thread_id, "docent", input=QUESTION, stream_mode=mode)
        }
        assert events == {"metadata", event}, mode

    final: Any = await client.runs.wait(thread_id, "docent", input=_ask("And indexes?"))
    assert isinstance(final, dict)
    assert final["messages"][-1]["content"].startswith("According to your documents")
    last_turn = model_server.chat_requests[-1]["messages"]
    assert [m["content"] for m in last_turn if m["role"] == "user"][-2:] == ["What does VACUUM do?", "And indexes?"]

    state: Any = await client.threads.get_state(thread_id)
    assert len(state["values"]["messages"]) == 5 * 4
    history = await client.threads.get_history(thread_id, limit=4)
    assert len(history) == 4
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    found = await client.threads.search(metadata={"purpose": "sdk test"})
    assert [t["thread_id"] for t in found] == [thread_id]
    fetched: Any = await client.threads.get(thread_id)
    assert fetched["values"]["messages"][-1] == final["messages"][-1]
    runs = await client.runs.list(thread_id)
    assert [r["status"] for r in runs] == ["success"] * 5
    assert (await client.runs.get(thread_id, runs[0]["run_id"]))["run_id"] == runs[0]["run_id"]

    model_server.script.append(Reply(failure="hang"))
    background = await client.runs.create(thread_id, "docent", input=QUESTION)
    await _wait_for(model_server.hanging)
    with pytest.raises(ConflictError):
        async for _ in client.runs.stream(thread_id, "docent", input=QUESTION):
            pass
    with pytest.raises(httpx.HTTPStatusError, match="409"):
        await client.runs.wait(thread_id, "docent", input=QUESTION)
    await client.runs.cancel(thread_id, background["run_id"], wait=True)
    assert (await client.runs.get(thread_id, background["run_id"]))["status"] == "interrupted"

    await client.threads.delete(thread_id)
    with pytest.raises(NotFoundError):
        await client.threads.get(thread_id)


async def _wait_for(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 10)


async def test_a_client_that_disconnects_mid_answer_loses_nothing(
    served: dict[str, Any], database_url: str, model_server: ScriptedOpenAI, stack: AsyncExitStack
) -> None:
    headers = other_user_headers(database_url)
    client = await stack.enter_async_context(get_client(url=served["base"], headers=headers, api_key=None))
    thread_id = (await client.threads.create())["thread_id"]
    gate = threading.Event()
    model_server.script.extend(
        [Reply(tool_calls=[("list_documents", {})]), Reply("You have no documents yet.", gate=gate)]
    )

    run_id = None
    async for part in client.runs.stream(thread_id, "docent", input=QUESTION, stream_mode="messages-tuple"):
        if part.event == "metadata":
            run_id = part.data["run_id"]
        elif part.event == "messages" and part.data[0]["content"]:
            break  # the first word of the answer: hang up while the model is still talking
    gate.set()
    assert run_id is not None

    result: Any = await client.runs.join(thread_id, run_id)
    assert result["messages"][-1]["content"] == "You have no documents yet."
    assert (await client.runs.get(thread_id, run_id))["status"] == "success"


async def test_a_client_that_asks_for_it_cancels_its_run_by_disconnecting(
    served: dict[str, Any], database_url: str, model_server: ScriptedOpenAI, stack: AsyncExitStack
) -> None:
    headers = other_user_headers(database_url)
    client = await stack.enter_async_context(get_client(url=served["base"], headers=headers, api_key=None))
    thread_id = (await client.threads.create())["thread_id"]
    for route in ("stream", "wait"):
        created: list[Any] = []
        model_server.hanging.clear()
        model_server.script.append(Reply(failure="hang"))
        if route == "stream":
            stream = cast(
                AsyncGenerator[Any],
                client.runs.stream(
                    thread_id, "docent", input=QUESTION, on_disconnect="cancel", on_run_created=created.append
                ),
            )
            await anext(stream)  # the metadata event
            await _wait_for(model_server.hanging)
            await stream.aclose()  # hang up while the model works
        else:
            asking = asyncio.create_task(
                client.runs.wait(
                    thread_id, "docent", input=QUESTION, on_disconnect="cancel", on_run_created=created.append
                )
            )
            await _wait_for(model_server.hanging)
            asking.cancel()  # closes the connection
        run_id = created[0]["run_id"]
        await client.runs.join(thread_id, run_id)
        assert (await client.runs.get(thread_id, run_id))["status"] == "interrupted", route


async def test_a_thread_survives_a_restart(
    served: dict[str, Any], database_url: str, model_server: ScriptedOpenAI, stack: AsyncExitStack
) -> None:
    headers = other_user_headers(database_url)
    _upload(served["base"], headers)
    client = await stack.enter_async_context(get_client(url=served["base"], headers=headers, api_key=None))
    thread_id = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "docent", input=QUESTION)

    process = served["process"]
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    with tempfile.TemporaryFile("w+") as log, serve_process(served["env"], log=log, port=served["port"]):
        state: Any = await client.threads.get_state(thread_id)
        assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai", "tool", "ai"]
        model_server.script.append(Reply("Earlier you asked: What does VACUUM do?"))
        final: Any = await client.runs.wait(thread_id, "docent", input=_ask("Recap?"))
        assert final["messages"][-1]["content"] == "Earlier you asked: What does VACUUM do?"
        assert [m["content"] for m in model_server.chat_requests[-1]["messages"] if m["role"] == "user"] == [
            "What does VACUUM do?",
            "Recap?",
        ]
