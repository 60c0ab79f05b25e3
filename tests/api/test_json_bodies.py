"""JSON that Python accepts but PostgreSQL or LangGraph cannot store or read back is refused
with a 422 on every route, and values that would break a thread later never reach it."""

import json
from typing import Any

import httpx
import pytest

from tests.agent import new_thread, run_body
from tests.conftest import InProcess

Headers = dict[str, str]
JSON = {"content-type": "application/json"}
DEEP = "[" * 40 + "]" * 40

# Each as it arrives on the wire, inside a run's metadata (`%s` is the value).
BAD_VALUES = [
    pytest.param(r'"a\u0000b"', "U+0000", id="nul"),
    pytest.param(r'"\ud800"', "surrogate", id="unpaired-surrogate"),
    pytest.param("NaN", "invalid JSON", id="nan"),
    pytest.param("Infinity", "invalid JSON", id="infinity"),
    pytest.param("1e309", "infinity", id="overflowing-float"),
    pytest.param("1" + "0" * 400, "infinity", id="400-digit-integer"),
    pytest.param(DEEP, "nested more than 32 levels", id="40-levels-deep"),
]


def _raw_run(value: str) -> bytes:
    return (
        b'{"assistant_id": "docent", "input": {"messages": [{"role": "user", "content": "Hi"}]}, "metadata": {"x": %s}}'
        % value.encode()
    )


async def _refused(response: httpx.Response, words: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert words in body["detail"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(("value", "words"), BAD_VALUES)
async def test_values_that_cannot_be_stored_are_refused_before_anything_is_written(
    agent: InProcess, user: tuple[Any, Headers], value: str, words: str
) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)
    for route in ("stream", "wait"):
        response = await agent.http.post(
            f"/threads/{thread_id}/runs/{route}", headers=headers | JSON, content=_raw_run(value)
        )
        await _refused(response, words)
    assert (await agent.http.get(f"/threads/{thread_id}/runs", headers=headers)).json() == []
    thread_body = b'{"metadata": {"x": %s}}' % value.encode()
    await _refused(await agent.http.post("/threads", headers=headers | JSON, content=thread_body), words)
    await _refused(await agent.http.patch(f"/threads/{thread_id}", headers=headers | JSON, content=thread_body), words)
    await _refused(await agent.http.post("/threads/search", headers=headers | JSON, content=thread_body), words)
    await _refused(
        await agent.http.post(f"/threads/{thread_id}/history", headers=headers | JSON, content=thread_body), words
    )
    assert (await agent.http.get(f"/threads/{thread_id}", headers=headers)).json()["metadata"] == {}


async def test_a_nul_in_a_question_or_a_search_is_refused(agent: InProcess, user: tuple[Any, Headers]) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)
    response = await agent.http.post(
        f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body("What does\x00 VACUUM do?")
    )
    await _refused(response, "U+0000")
    await _refused(await agent.http.post("/search", headers=headers, json={"query": "vacuum\x00"}), "U+0000")
    # The six characters \u0000 typed as text are not a NUL and pass.
    response = await agent.http.post("/search", headers=headers, json={"query": "vacuum \\u0000"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe{}", b"[" * 5000 + b"]" * 5000, b'{"metadata": {}', b"", b"null"],
)
async def test_unreadable_bodies_are_a_422_not_a_400(agent: InProcess, user: tuple[Any, Headers], body: bytes) -> None:
    _, headers = user
    response = await agent.http.post("/threads", headers=headers | JSON, content=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("key", ["parents", "step", "source"])
async def test_run_metadata_may_not_take_langgraphs_own_keys(
    agent: InProcess, user: tuple[Any, Headers], key: str
) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)
    response = await agent.http.post(
        f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body(metadata={key: "x", "mine": 1})
    )
    assert response.status_code == 422, response.text
    assert key in response.json()["detail"]
    response = await agent.http.post(
        f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body(metadata={"mine": 1})
    )
    assert response.status_code == 200, response.text
    history = await agent.http.post(f"/threads/{thread_id}/history", headers=headers, json={})
    assert history.status_code == 200, history.text
    assert history.json()[0]["metadata"]["mine"] == 1


async def test_json_bodies_over_a_megabyte_are_refused_unread(agent: InProcess, user: tuple[Any, Headers]) -> None:
    _, headers = user
    big = json.dumps({"metadata": {"x": "y" * (1024 * 1024)}}).encode()
    response = await agent.http.post("/threads", headers=headers | JSON, content=big)
    assert (response.status_code, response.json()["error"]) == (413, "too_large")
    anonymous = await agent.http.post("/threads", headers=JSON, content=big)
    assert anonymous.status_code == 413


async def test_merged_thread_metadata_keeps_to_the_limit(agent: InProcess, user: tuple[Any, Headers]) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers, metadata={"a": "x" * 5000})
    response = await agent.http.patch(f"/threads/{thread_id}", headers=headers, json={"metadata": {"b": "y" * 5000}})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "metadata_too_large"
    thread = (await agent.http.get(f"/threads/{thread_id}", headers=headers)).json()
    assert set(thread["metadata"]) == {"a"}  # the refused merge was rolled back
    response = await agent.http.patch(f"/threads/{thread_id}", headers=headers, json={"metadata": {"b": "small"}})
    assert response.status_code == 200
    assert response.json()["metadata"]["b"] == "small"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/threads/search", {"offset": 2**63}),
        ("get", "/threads/{thread_id}/runs?offset=99999999999999999999", None),
        ("post", "/threads/{thread_id}/runs/{run_id}/feedback", {"key": "k", "score": "NaN"}),
    ],
)
async def test_out_of_range_numbers_are_refused(
    agent: InProcess, user: tuple[Any, Headers], method: str, path: str, body: dict[str, Any] | None
) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)
    run = await agent.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body())
    assert run.status_code == 200
    run_id = (await agent.http.get(f"/threads/{thread_id}/runs", headers=headers)).json()[0]["run_id"]
    url = path.format(thread_id=thread_id, run_id=run_id)
    response = await agent.http.request(method.upper(), url, headers=headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"
