"""Threads in the Agent Server's shapes, owned per user: another user's thread is a 404 on
every thread and run route, exactly like a missing one."""

import uuid
from typing import Any

import httpx
import psycopg
import pytest

from tests.agent import new_thread, other_user_headers, run_body, stream, upload_manual
from tests.conftest import InProcess

Headers = dict[str, str]


async def test_create_get_update_search_and_delete(client: httpx.AsyncClient, user: tuple[Any, Headers]) -> None:
    _, headers = user
    created = (await client.post("/threads", headers=headers, json={"metadata": {"topic": "vacuum"}})).json()
    assert set(created) >= {"thread_id", "created_at", "updated_at", "metadata", "status", "values", "interrupts"}
    assert created["status"] == "idle"
    thread_id = created["thread_id"]

    chosen = str(uuid.uuid4())
    assert (await client.post("/threads", headers=headers, json={"thread_id": chosen})).json()["thread_id"] == chosen
    duplicate = await client.post("/threads", headers=headers, json={"thread_id": chosen})
    assert duplicate.status_code == 409
    same = await client.post("/threads", headers=headers, json={"thread_id": chosen, "if_exists": "do_nothing"})
    assert same.status_code == 200

    patched = await client.patch(f"/threads/{thread_id}", headers=headers, json={"metadata": {"pinned": True}})
    assert patched.json()["metadata"] == {"topic": "vacuum", "pinned": True}

    found = await client.post("/threads/search", headers=headers, json={"metadata": {"topic": "vacuum"}})
    assert [t["thread_id"] for t in found.json()] == [thread_id]
    everything = await client.post("/threads/search", headers=headers, json={"limit": 10})
    assert [t["thread_id"] for t in everything.json()] == [thread_id, chosen]  # most recently updated first
    assert everything.headers["x-pagination-total"] == "2"
    page = await client.post(
        "/threads/search", headers=headers, json={"limit": 1, "offset": 1, "sort_by": "created_at"}
    )
    assert [t["thread_id"] for t in page.json()] == [thread_id]  # newest first, so the first created is second

    assert (await client.delete(f"/threads/{thread_id}", headers=headers)).status_code == 204
    assert (await client.get(f"/threads/{thread_id}", headers=headers)).status_code == 404
    assert (await client.delete(f"/threads/{thread_id}", headers=headers)).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"metadata": "not an object"},
        {"metadata": {"big": "x" * 9000}},
        {"thread_id": "not-a-uuid"},
        {"if_exists": "overwrite"},
        {"ttl": {"ttl": 60, "strategy": "delete"}},
        {"supersteps": [{"updates": [{"values": {}, "as_node": "agent"}]}]},
    ],
)
async def test_bad_thread_bodies_are_422(client: httpx.AsyncClient, user: tuple[Any, Headers], body: Any) -> None:
    _, headers = user
    response = await client.post("/threads", headers=headers, json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


async def test_search_refuses_filters_it_does_not_apply(client: httpx.AsyncClient, user: tuple[Any, Headers]) -> None:
    _, headers = user
    response = await client.post("/threads/search", headers=headers, json={"values": {"messages": []}})
    assert response.status_code == 422
    response = await client.post("/threads/search", headers=headers, json={"limit": 0})
    assert response.status_code == 422


async def test_every_thread_and_run_route_is_404_for_another_users_thread(
    agent: InProcess, user: tuple[Any, Headers], database_url: str
) -> None:
    _, owner = user
    await upload_manual(agent, owner)
    thread_id = await new_thread(agent.http, owner)
    response, events = await stream(agent.http, owner, thread_id)
    run_id = events[0][1]["run_id"]
    intruder = other_user_headers(database_url)
    base = f"/threads/{thread_id}"
    checkpoint_id = (await agent.http.get(f"{base}/state", headers=owner)).json()["checkpoint"]["checkpoint_id"]
    routes = [
        ("GET", base, None),
        ("PATCH", base, {"metadata": {"x": 1}}),
        ("DELETE", base, None),
        ("GET", f"{base}/state", None),
        ("GET", f"{base}/state/{checkpoint_id}", None),
        ("POST", f"{base}/state/checkpoint", {"checkpoint": {"checkpoint_id": checkpoint_id}}),
        ("GET", f"{base}/history", None),
        ("POST", f"{base}/history", {"limit": 5}),
        ("POST", f"{base}/runs", run_body()),
        ("POST", f"{base}/runs/stream", run_body()),
        ("POST", f"{base}/runs/wait", run_body()),
        ("GET", f"{base}/runs", None),
        ("GET", f"{base}/runs/{run_id}", None),
        ("GET", f"{base}/runs/{run_id}/join", None),
        ("POST", f"{base}/runs/{run_id}/cancel", None),
        ("POST", f"{base}/runs/{run_id}/feedback", {"key": "helpful", "score": 0}),
    ]
    for method, path, body in routes:
        response = await agent.http.request(method, path, headers=intruder, json=body)
        assert response.status_code == 404, (method, path, response.text)
    searched = await agent.http.post("/threads/search", headers=intruder, json={"ids": [thread_id]})
    assert searched.json() == []
    assert (await agent.http.post("/threads/count", headers=intruder, json={"ids": [thread_id]})).json() == 0
    taken = await agent.http.post("/threads", headers=intruder, json={"thread_id": thread_id})
    assert taken.status_code == 409  # ids are global; the owner's thread is untouched
    state = (await agent.http.get(f"{base}/state", headers=owner)).json()
    assert len(state["values"]["messages"]) == 4
    assert (await agent.http.get(f"{base}/runs", headers=owner)).json()[0]["status"] == "success"


async def test_state_history_and_runs_follow_the_conversation(agent: InProcess, user: tuple[Any, Headers]) -> None:
    _, headers = user
    await upload_manual(agent, headers)
    thread_id = await new_thread(agent.http, headers)
    await stream(agent.http, headers, thread_id, "What does VACUUM do?")
    await stream(agent.http, headers, thread_id, "And indexes?")

    thread = (await agent.http.get(f"/threads/{thread_id}", headers=headers)).json()
    assert thread["title"] == "What does VACUUM do?"
    assert len(thread["values"]["messages"]) == 8
    history = (await agent.http.post(f"/threads/{thread_id}/history", headers=headers, json={"limit": 3})).json()
    assert len(history) == 3
    latest, previous = history[0], history[1]
    assert latest["parent_checkpoint"]["checkpoint_id"] == previous["checkpoint"]["checkpoint_id"]
    older = await agent.http.post(
        f"/threads/{thread_id}/history", headers=headers, json={"limit": 100, "before": latest["checkpoint"]}
    )
    assert older.json()[0]["checkpoint"] == previous["checkpoint"]
    at = await agent.http.get(f"/threads/{thread_id}/state/{previous['checkpoint']['checkpoint_id']}", headers=headers)
    assert at.json()["checkpoint"] == previous["checkpoint"]
    # The SDK's get_state(checkpoint=...): the same state, through a POST.
    posted = await agent.http.post(
        f"/threads/{thread_id}/state/checkpoint", headers=headers, json={"checkpoint": previous["checkpoint"]}
    )
    assert posted.json() == at.json()
    bad_bodies: list[dict[str, Any]] = [{"checkpoint": {}}, {"checkpoint": {"checkpoint_id": "x" * 65}}]
    for bad in bad_bodies:
        response = await agent.http.post(f"/threads/{thread_id}/state/checkpoint", headers=headers, json=bad)
        assert response.status_code == 422, bad
    long_id = await agent.http.get(f"/threads/{thread_id}/state/{'a' * 5000}", headers=headers)
    assert long_id.status_code == 422
    assert len(long_id.text) < 500  # the id is not echoed back
    for root in ({"checkpoint_ns": ""}, {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None}):
        asked = {"checkpoint": root, "limit": 3}  # what the SDK may send for the whole graph
        history = await agent.http.post(f"/threads/{thread_id}/history", headers=headers, json=asked)
        assert len(history.json()) == 3, root
    one = {"checkpoint": {"checkpoint_id": latest["checkpoint"]["checkpoint_id"]}}
    assert (await agent.http.post(f"/threads/{thread_id}/history", headers=headers, json=one)).status_code == 422
    assert (await agent.http.post("/threads/count", headers=headers, json={})).json() == 1
    runs = (await agent.http.get(f"/threads/{thread_id}/runs", headers=headers)).json()
    assert [r["status"] for r in runs] == ["success", "success"]
    assert runs[0]["usage"]["output_tokens"] > 0
    assert len((await agent.http.get(f"/threads/{thread_id}/runs?limit=1&offset=1", headers=headers)).json()) == 1
    joined = await agent.http.get(f"/threads/{thread_id}/runs/{runs[0]['run_id']}/join", headers=headers)
    assert joined.json()["messages"][-1]["content"] == thread["values"]["messages"][-1]["content"]


def _checkpoint_rows(database_url: str, thread_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "select (select count(*) from langgraph.checkpoints where thread_id = %(t)s)"
            " + (select count(*) from langgraph.checkpoint_blobs where thread_id = %(t)s)"
            " + (select count(*) from langgraph.checkpoint_writes where thread_id = %(t)s)",
            {"t": thread_id},
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_deleted_accounts_conversations_go_with_it_and_never_reach_a_new_owner(
    agent: InProcess, user: tuple[Any, Headers], database_url: str
) -> None:
    user_id, headers = user
    thread_id = await new_thread(agent.http, headers)
    response = await agent.http.post(
        f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body("My private question?")
    )
    assert response.status_code == 200
    assert _checkpoint_rows(database_url, thread_id) > 0
    with psycopg.connect(database_url) as conn:  # Supabase Auth deletes the account
        conn.execute("delete from auth.users where id = %s", (user_id,))
    assert _checkpoint_rows(database_url, thread_id) == 0

    newcomer = other_user_headers(database_url)
    body = run_body("Hello?", if_not_exists="create")
    response = await agent.http.post(f"/threads/{thread_id}/runs/wait", headers=newcomer, json=body)
    assert response.status_code == 200, response.text
    questions = [m["content"] for m in response.json()["messages"] if m["type"] == "human"]
    assert questions == ["Hello?"]
