"""GET/PATCH /me through the user transaction: the profile exists from the first request."""

import uuid

import httpx
import psycopg
import pytest

from tests.agent import new_thread, other_user_headers, stream
from tests.conftest import DatabaseActivity, InProcess
from tests.helpers import claims, create_user, hs256

User = tuple[uuid.UUID, dict[str, str]]


async def test_first_request_creates_the_profile_from_the_token(client: httpx.AsyncClient, user: User) -> None:
    user_id, headers = user
    first = await client.get("/me", headers=headers)
    second = await client.get("/me", headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["email"] == f"{user_id}@example.com"
    assert first.json()["display_name"] is None


async def test_each_request_runs_in_one_user_transaction(
    client: httpx.AsyncClient, user: User, db_activity: DatabaseActivity
) -> None:
    _, headers = user
    response = await client.get("/me", headers=headers)
    assert response.status_code == 200
    assert db_activity.checkouts == 1  # the claims, the profile and the read: one connection, one transaction
    assert any("FROM profiles" in statement for statement in db_activity.statements)


async def test_patch_updates_only_the_callers_profile(client: httpx.AsyncClient, user: User, database_url: str) -> None:
    user_id, headers = user
    response = await client.patch("/me", headers=headers, json={"display_name": "  Ada  "})
    assert response.status_code == 200
    assert response.json()["display_name"] == "Ada"
    assert response.json()["updated_at"] >= response.json()["created_at"]
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("select display_name from profiles where id = %s", (user_id,)).fetchone()
    assert stored == ("Ada",)
    cleared = await client.patch("/me", headers=headers, json={"display_name": None})
    assert cleared.json()["display_name"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"display_name": ', "body"),
        (b"[1, 2", "body"),
        (b'{"display_name": 5}', "body.display_name"),
        (b'{"display_name": "' + b"x" * 101 + b'"}', "body.display_name"),
        (b'{"display_name": "x", "role": "admin"}', "body.role"),
        (b"{}", "body.display_name"),
        (b'{"display_name": "a\\u0000b"}', "body"),  # refused as it is read (`api/json_body.py`)
        (b'{"display_name": "a\\u202eb"}', "body.display_name"),  # a bidi override
        (b'{"display_name": "a\\u200bb"}', "body.display_name"),  # a zero-width space
    ],
)
async def test_bad_bodies_name_the_field(client: httpx.AsyncClient, user: User, body: bytes, field: str) -> None:
    _, headers = user
    response = await client.patch("/me", headers={**headers, "content-type": "application/json"}, content=body)
    assert response.status_code == 422
    payload = response.json()
    assert payload["error"] == "invalid_request"
    assert field in [problem["field"] for problem in payload["errors"]]
    assert "Traceback" not in response.text
    assert "input" not in payload["errors"][0]


async def test_a_valid_token_for_a_deleted_user_is_refused(client: httpx.AsyncClient) -> None:
    token = hs256(claims(uuid.uuid4()))  # signed correctly, but no such auth.users row
    response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["error"] == "unknown_user"


async def test_unknown_routes_and_methods_answer_json(client: httpx.AsyncClient, user: User) -> None:
    _, headers = user
    missing = await client.get("/nope", headers=headers)
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    wrong = await client.delete("/health")
    assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")


async def test_erasing_my_data_removes_what_i_own_and_nothing_else(
    client: httpx.AsyncClient, database_url: str
) -> None:
    alice, bob = create_user(database_url), create_user(database_url)
    for user in (alice, bob):
        headers = {"Authorization": f"Bearer {hs256(claims(user))}"}
        await client.patch("/me", headers=headers, json={"display_name": "Named"})
        files = {"file": ("note.md", f"# Note\n\n{user}\n".encode(), "text/markdown")}
        assert (await client.post("/documents", headers=headers, files=files)).status_code == 202
    alice_headers = {"Authorization": f"Bearer {hs256(claims(alice))}"}

    assert (await client.delete("/me/data", headers=alice_headers)).status_code == 204

    assert (await client.get("/documents", headers=alice_headers)).json() == []
    assert (await client.get("/me", headers=alice_headers)).json()["display_name"] is None
    with psycopg.connect(database_url) as conn:
        left: dict[uuid.UUID, int] = dict(
            conn.execute(
                "select u.id, (select count(*) from documents d where d.user_id = u.id)"
                " + (select count(*) from document_sources s where s.user_id = u.id)"
                " from auth.users u where u.id = any(%s)",
                ([alice, bob],),
            ).fetchall()
        )
        bob_name = conn.execute("select display_name from profiles where id = %s", (bob,)).fetchone()
    assert left == {alice: 0, bob: 2}
    assert bob_name == ("Named",)


async def test_erasing_my_data_removes_threads_runs_and_checkpoints_and_keeps_usage(
    agent: InProcess, user: tuple[uuid.UUID, dict[str, str]], database_url: str
) -> None:
    user_id, headers = user
    thread_id = await new_thread(agent.http, headers)
    await stream(agent.http, headers, thread_id)
    other = other_user_headers(database_url)
    others_thread = await new_thread(agent.http, other)
    await stream(agent.http, other, others_thread)

    assert (await agent.http.delete("/me/data", headers=headers)).status_code == 204

    assert (await agent.http.post("/threads/search", headers=headers, json={})).json() == []
    with psycopg.connect(database_url) as conn:
        counts = conn.execute(
            "select (select count(*) from langgraph.checkpoints where thread_id = %(mine)s),"
            " (select count(*) from langgraph.checkpoints where thread_id = %(theirs)s),"
            " (select count(*) from runs where user_id = %(user)s),"
            " (select runs from usage_daily where user_id = %(user)s)",
            {"mine": thread_id, "theirs": others_thread, "user": user_id},
        ).fetchone()
    assert counts is not None
    mine, theirs, runs, usage = counts
    assert (mine, runs, usage) == (0, 0, 1)
    assert theirs > 0
    assert (
        len((await agent.http.get(f"/threads/{others_thread}/state", headers=other)).json()["values"]["messages"]) == 4
    )
