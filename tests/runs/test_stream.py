"""Agent runs through the HTTP API, with langchain-openai against the scripted model server."""

import asyncio
import json
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from docent.retrieval import retriever as retriever_module
from docent.retrieval.embeddings import Embedder
from docent.retrieval.search import search_chunks
from tests.agent import new_thread, run_body, stream, upload_manual
from tests.conftest import InProcess
from tests.scripted_openai import Reply, ScriptedOpenAI


def _answer(values: dict[str, Any]) -> str:
    return str(values["messages"][-1]["content"])


async def test_streams_tokens_then_an_answer_citing_a_retrieved_passage(
    agent: InProcess, user: tuple[Any, dict[str, str]], model_server: ScriptedOpenAI
) -> None:
    _, headers = user
    await upload_manual(agent, headers)
    thread_id = await new_thread(agent.http, headers)

    response, events = await stream(agent.http, headers, thread_id, stream_mode=["messages-tuple", "values"])

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    kind, metadata = events[0]
    assert kind == "metadata"
    assert response.headers["content-location"] == f"/threads/{thread_id}/runs/{metadata['run_id']}"
    tokens = [data[0]["content"] for kind, data in events if kind == "messages" and data[0]["type"] == "AIMessageChunk"]
    assert len([t for t in tokens if t]) > 3, "the answer arrives token by token"
    final = [data for kind, data in events if kind == "values"][-1]
    assert _answer(final).startswith("According to your documents, VACUUM reclaims storage")
    assert [c["ref"] for c in final["citations"]] == [1]
    assert final["citations"][0]["snippet"].startswith("VACUUM reclaims storage")
    assert final["messages"][-1]["additional_kwargs"]["citations"] == final["citations"], "the answer keeps its own"
    assert final["citations"][0]["chunk_id"] == final["retrieval"]["chunk_ids"][0]
    # One model call: it saw the tools, and the search already made for the question, its
    # passages as delimited, untrusted material.
    (request,) = model_server.chat_requests
    assert {tool["function"]["name"] for tool in request["tools"]} == {
        "search_documents",
        "list_documents",
        "read_document_section",
    }
    call, tool_result = request["messages"][-2:]
    assert call["tool_calls"][0]["function"]["name"] == "search_documents"
    assert json.loads(call["tool_calls"][0]["function"]["arguments"]) == {"query": "What does VACUUM do?"}
    assert tool_result["role"] == "tool"
    assert tool_result["tool_call_id"] == call["tool_calls"][0]["id"]
    assert "UNTRUSTED" in tool_result["content"]
    assert '<passage ref="1" title="Vacuum"' in tool_result["content"]
    assert final["retrieval"]["queries"] == ["What does VACUUM do?"]
    assert final["retrieval"]["rounds"] == 1


async def test_each_stream_mode_sends_only_its_events(
    agent: InProcess, user: tuple[Any, dict[str, str]], model_server: ScriptedOpenAI
) -> None:
    _, headers = user
    await upload_manual(agent, headers)
    thread_id = await new_thread(agent.http, headers)
    for mode, event in (("values", "values"), ("updates", "updates"), ("messages-tuple", "messages")):
        _, events = await stream(agent.http, headers, thread_id, stream_mode=mode)
        assert {kind for kind, _ in events} == {"metadata", event}, mode
    _, events = await stream(agent.http, headers, thread_id, stream_mode="updates")
    updates = [data for kind, data in events if kind == "updates"]
    assert [[m["type"] for m in update["agent"]["messages"]] for update in updates] == [["ai", "tool", "ai"]]
    model_server.script.extend([Reply(tool_calls=[("search_documents", {"query": "B-tree"})]), Reply("B-trees [1].")])
    _, events = await stream(agent.http, headers, thread_id, stream_mode="updates")
    nodes = [next(iter(data)) for kind, data in events if kind == "updates"]
    assert nodes == ["agent", "tools", "agent"]


async def test_a_second_turn_sees_the_first_questions_and_answers_but_not_their_passages(
    agent: InProcess, user: tuple[Any, dict[str, str]], model_server: ScriptedOpenAI
) -> None:
    _, headers = user
    await upload_manual(agent, headers)
    thread_id = await new_thread(agent.http, headers)
    await stream(agent.http, headers, thread_id, "What does VACUUM do?")
    model_server.script.extend([Reply("You asked about VACUUM, which reclaims storage [9].")])

    _, events = await stream(agent.http, headers, thread_id, "What did I just ask?")

    seen = model_server.chat_requests[-1]["messages"]
    assert [m["role"] for m in seen] == ["system", "user", "assistant", "user", "assistant", "tool"]
    assert seen[1]["content"] == "What does VACUUM do?"
    assert seen[2]["content"].startswith("According to your documents")
    assert "What did I just ask?" in seen[4]["tool_calls"][0]["function"]["arguments"]
    final = [data for kind, data in events if kind == "values"][-1]
    assert len(final["messages"]) == 4 + 4  # question, search, passages, answer; twice
    assert final["citations"] == [], "[9] was not retrieved in this turn"


async def test_citations_of_passages_not_retrieved_in_the_turn_are_dropped(
    agent: InProcess, user: tuple[Any, dict[str, str]], model_server: ScriptedOpenAI
) -> None:
    _, headers = user
    await upload_manual(agent, headers)
    thread_id = await new_thread(agent.http, headers)
    model_server.script.extend(
        [Reply(tool_calls=[("search_documents", {"query": "index", "k": 1})]), Reply("B-trees [1], and more [2][70].")]
    )
    _, events = await stream(agent.http, headers, thread_id, "Tell me about indexes")
    final = [data for kind, data in events if kind == "values"][-1]
    retrieved = len(final["retrieval"]["chunk_ids"])
    assert 2 <= retrieved < 70
    assert [c["ref"] for c in final["citations"]] == [1, 2]
    assert final["retrieval"]["queries"] == ["Tell me about indexes", "index"]


async def test_wait_returns_the_final_values(agent: InProcess, user: tuple[Any, dict[str, str]]) -> None:
    _, headers = user
    await upload_manual(agent, headers)
    thread_id = await new_thread(agent.http, headers)
    response = await agent.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body())
    assert response.status_code == 200
    assert _answer(response.json()).startswith("According to your documents")
    state = (await agent.http.get(f"/threads/{thread_id}/state", headers=headers)).json()
    assert state["values"] == response.json()
    assert state["next"] == []
    assert state["checkpoint"]["thread_id"] == thread_id
    # Where the SDK asks again if the body is cut off: the same outcome.
    again = await agent.http.get(response.headers["location"], headers=headers)
    assert response.headers["location"] == f"{response.headers['content-location']}/join"
    assert again.json() == response.json()


async def test_extractive_mode_quotes_and_cites_without_a_model(
    client: httpx.AsyncClient, user: tuple[Any, dict[str, str]], app: Any
) -> None:
    _, headers = user
    from tests.conftest import running

    async with running(app) as served:
        await upload_manual(served, headers)
        thread_id = await new_thread(served.http, headers)
        _, events = await stream(served.http, headers, thread_id, "How do B-tree indexes help?")
    final = [data for kind, data in events if kind == "values"][-1]
    answer = _answer(final)
    assert answer.startswith("Extractive answer")
    assert "B-tree index speeds up" in answer
    assert {c["ref"] for c in final["citations"]} == {1, 2}


async def test_an_answer_with_nothing_found_says_when_documents_are_still_being_processed(
    user: tuple[Any, dict[str, str]], app: Any, database_url: str
) -> None:
    user_id, headers = user
    from tests.conftest import running

    document_id = uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:  # an upload the worker is still reading
        conn.execute(
            "insert into documents (id, user_id, filename, title, content_type, size_bytes, content_hash, status)"
            " values (%s, %s, 'big.md', 'Big', 'text/markdown', 1, %s, 'processing')",
            (document_id, user_id, uuid.uuid4().hex),
        )
    try:
        async with running(app) as served:
            thread_id = await new_thread(served.http, headers)
            _, events = await stream(served.http, headers, thread_id, "How do B-tree indexes help?")
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("delete from documents where id = %s", (document_id,))
    final = [data for kind, data in events if kind == "values"][-1]
    found = next(m for m in final["messages"] if m["type"] == "tool")
    assert found["content"].endswith("1 document is still being processed and cannot be searched yet.")
    assert _answer(final).endswith(
        "Nothing in your documents matches this question. 1 document is still being processed and cannot be"
        " searched yet."
    )


async def test_checkpoints_are_written_as_a_run_ends_unless_the_run_asks_for_every_step(
    agent: InProcess, user: tuple[Any, dict[str, str]], database_url: str
) -> None:
    _, headers = user
    await upload_manual(agent, headers)
    written: dict[str, int] = {}

    def checkpoints(thread_id: str) -> int:
        with psycopg.connect(database_url) as conn:
            query = "select count(*) from langgraph.checkpoints where thread_id = %s"
            row = conn.execute(query, (thread_id,)).fetchone()
        assert row is not None
        return int(row[0])

    # `checkpoint_during`: LangGraph's older name for it (True: after every step).
    asked: dict[str, dict[str, Any]] = {
        "None": {},
        "async": {"durability": "async"},
        "sync": {"durability": "sync"},
        "checkpoint_during": {"checkpoint_during": True},
    }
    for durability, asking in asked.items():
        thread_id = await new_thread(agent.http, headers)
        body = run_body() | asking
        for _ in range(2):  # the second turn: a first one also writes the thread's empty start
            before = checkpoints(thread_id)
            response = await agent.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=body)
            assert _answer(response.json()).startswith("According to your documents")
        written[durability] = checkpoints(thread_id) - before
        state = (await agent.http.get(f"/threads/{thread_id}/state", headers=headers)).json()
        assert [m["type"] for m in state["values"]["messages"]][-4:] == ["human", "ai", "tool", "ai"], durability
    # One as the run ends, or one for the input and at least one per step (here one: agent).
    assert written["None"] == 1
    assert written["async"] == written["sync"] == written["checkpoint_during"] >= 2

    thread_id = await new_thread(agent.http, headers)
    refused = await agent.http.post(
        f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body(durability="never")
    )
    assert refused.status_code == 422
    assert "durability" in refused.text


async def test_the_questions_search_runs_while_its_thread_loads_embedded_once(
    agent: InProcess, user: tuple[Any, dict[str, str]], embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, headers = user
    await upload_manual(agent, headers)
    thread_id = await new_thread(agent.http, headers)
    embedded: list[str] = []
    embed_query = embedder.embed_query

    async def counted(text: str) -> list[float]:
        embedded.append(text)
        return await embed_query(text)

    monkeypatch.setattr(embedder, "embed_query", counted)
    searching = asyncio.Event()

    async def search(*args: Any, **kwargs: Any) -> Any:
        searching.set()
        return await search_chunks(*args, **kwargs)

    monkeypatch.setattr(retriever_module, "search_chunks", search)
    loads: list[int] = []
    load = AsyncPostgresSaver.aget_tuple

    async def loading(saver: AsyncPostgresSaver, config: Any) -> Any:
        loads.append(len(embedded))
        # The thread's state is not back until the search is under way: a search that
        # waited for it would never start, and the run would fail.
        await asyncio.wait_for(searching.wait(), timeout=10)
        return await load(saver, config)

    monkeypatch.setattr(AsyncPostgresSaver, "aget_tuple", loading)
    _, events = await stream(agent.http, headers, thread_id, "What does   VACUUM\ndo?")
    assert [kind for kind, _ in events][-1] != "error", events[-1]
    assert embedded == ["What does VACUUM do?"]  # the first search's query, embedded once
    assert loads[0] == 1, "the embedding began before the thread's checkpoint was read"
    final = [data for kind, data in events if kind == "values"][-1]
    assert final["retrieval"]["queries"] == ["What does VACUUM do?"]
