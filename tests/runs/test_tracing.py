"""LangSmith: each run is one trace whose id is the run id, with retrieval and model child
runs and the caller's ids in metadata, and no token or key anywhere; feedback reaches it."""

import time
from collections.abc import Callable
from typing import Any

from docent.retrieval.embeddings import Embedder
from docent.settings import Settings
from tests.agent import app_with, new_thread, stream, upload_manual
from tests.conftest import running
from tests.langsmith_standin import LangSmithStandIn

LANGSMITH_KEY = "lsv2_pt_standin_secret_key_0123456789"


def _wait_for_end(standin: LangSmithStandIn, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with standin.lock:
            root = standin.runs.get(run_id, {})
            if root.get("end_time") and root.get("outputs") is not None:
                return dict(root)
        time.sleep(0.05)  # polling what the client's background thread has uploaded
    raise AssertionError(f"trace {run_id} never completed: {standin.runs.get(run_id)}")


async def test_each_run_is_one_trace_named_after_the_graph_with_no_secrets(
    llm_settings: Callable[..., Settings], embedder: Embedder, user: tuple[Any, dict[str, str]]
) -> None:
    user_id, headers = user
    standin = LangSmithStandIn()
    settings = llm_settings(
        langsmith_tracing=True, langsmith_api_key=LANGSMITH_KEY, langsmith_endpoint=standin.url, langsmith_project="t"
    )
    with standin.running():
        async with running(app_with(settings, embedder)) as served:
            await upload_manual(served, headers)
            thread_id = await new_thread(served.http, headers)
            _, events = await stream(served.http, headers, thread_id)
            run_id = events[0][1]["run_id"]
            await served.state["tracing"].flush()
            root = _wait_for_end(standin, run_id)

            feedback = await served.http.post(
                f"/threads/{thread_id}/runs/{run_id}/feedback",
                headers=headers,
                json={"key": "helpful", "score": 1, "comment": "spot on"},
            )
            assert feedback.status_code == 201
            assert feedback.json()["sent_to_langsmith"] is True

    assert root["name"] == "docent"
    assert str(root["trace_id"]) == run_id
    assert root.get("parent_run_id") is None
    metadata = root["extra"]["metadata"]
    assert metadata["user_id"] == str(user_id)
    assert metadata["thread_id"] == thread_id
    documents = await _documents(settings, embedder, headers)
    assert metadata["document_ids"] == documents
    children = standin.children(run_id)
    kinds = {child["run_type"] for child in children}
    assert {"llm", "retriever", "chain"} <= kinds
    retriever = next(child for child in children if child["run_type"] == "retriever")
    assert retriever["outputs"]["documents"][0]["metadata"]["document_id"] == documents[0]
    assert standin.feedback == [
        {
            **standin.feedback[0],
            "run_id": run_id,
            "key": "helpful",
            "score": 1,
            "comment": "spot on",
            "session_id": standin.project["id"],
        }
    ]
    assert standin.api_keys == {LANGSMITH_KEY}
    token = headers["Authorization"].removeprefix("Bearer ")
    everything = b"".join(standin.bodies)
    for secret in (token, LANGSMITH_KEY, "sk-scripted"):
        assert secret.encode() not in everything


async def _documents(settings: Settings, embedder: Embedder, headers: dict[str, str]) -> list[str]:
    async with running(app_with(settings.model_copy(update={"langsmith_tracing": False}), embedder)) as served:
        return [d["id"] for d in (await served.http.get("/documents", headers=headers)).json()]


async def test_feedback_is_stored_without_tracing_and_validated(agent: Any, user: tuple[Any, dict[str, str]]) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)
    _, events = await stream(agent.http, headers, thread_id)
    run_id = events[0][1]["run_id"]
    url = f"/threads/{thread_id}/runs/{run_id}/feedback"
    stored = await agent.http.post(url, headers=headers, json={"key": "helpful", "score": 0})
    assert stored.status_code == 201
    assert stored.json()["sent_to_langsmith"] is False
    for bad in ({"score": 1}, {"key": "", "score": 1}, {"key": "k", "comment": "x" * 5000}, {"key": "k", "extra": 1}):
        assert (await agent.http.post(url, headers=headers, json=bad)).status_code == 422
    missing = f"/threads/{thread_id}/runs/00000000-0000-4000-8000-000000000000/feedback"
    assert (await agent.http.post(missing, headers=headers, json={"key": "k"})).status_code == 404
