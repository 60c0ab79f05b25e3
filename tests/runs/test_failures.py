"""Bad input, a failing model, a busy thread, cancellation, limits: each a clear status or
error event, and the user's message kept so that asking again works."""

import asyncio
import gc
import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy.exc
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg_pool import PoolTimeout

from docent.db import runs as runs_db
from docent.db.checkpoint_saver import LEASE_LOST
from docent.db.session import acting_as, service_transaction, user_transaction
from docent.retrieval.embeddings import Embedder
from docent.runs import RunManager, lease
from docent.runs.failures import describe
from docent.runs.manager import RunSpec
from docent.settings import Settings
from tests.agent import app_with, new_thread, other_user_headers, run_body, stream, upload_manual
from tests.conftest import InProcess, running
from tests.helpers import insert_run
from tests.scripted_openai import Reply, ScriptedOpenAI

Headers = dict[str, str]


async def _messages(http: httpx.AsyncClient, headers: Headers, thread_id: str) -> list[dict[str, Any]]:
    state = (await http.get(f"/threads/{thread_id}/state", headers=headers)).json()
    return list(state["values"].get("messages", []))


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"assistant_id": "docent"}, 422, "input: Field required"),
        ({"assistant_id": "docent", "input": {"messages": []}}, 422, "at least 1 item"),
        (run_body("   "), 422, "The message is empty."),
        (run_body("x" * 100_000), 422, "The message has 100000 characters; at most 16000 are accepted."),
        (run_body(assistant_id="someone-else"), 404, "Thread or assistant not found."),
        (
            run_body(stream_mode="debug"),
            422,
            "body.stream_mode: Input should be 'values', 'updates' or 'messages-tuple'",
        ),
        (run_body(stream_mode=["values", "tasks"]), 422, "stream_mode"),
        (run_body(multitask_strategy="rollback"), 422, "rollback' is not supported"),
        (run_body(command={"resume": "yes"}), 422, "not supported by Docent: command"),
        (run_body(config={"recursion_limit": 5}), 422, "not supported by Docent: config"),
        (run_body(stream_resumable=True), 422, "not supported by Docent: stream_resumable"),
        (run_body(checkpoint_during="yes"), 422, "checkpoint_during must be true or false"),
        (run_body(checkpoint_during=True, durability="exit"), 422, "not sent with durability"),
        (run_body(checkpoint={"checkpoint_id": "abc"}), 422, "not supported by Docent: checkpoint"),
        (
            {"assistant_id": "docent", "input": {"messages": [{"role": "user", "content": 5}]}},
            422,
            "body.input.messages.0.content: Input should be a valid string",
        ),
        ({"assistant_id": "docent", "input": {"messages": [{"role": "system", "content": "hi"}]}}, 422, "role"),
    ],
)
async def test_bad_run_requests_are_refused_and_change_nothing(
    agent: InProcess, user: tuple[Any, Headers], body: dict[str, Any], status: int, expected: str
) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)
    for route in ("stream", "wait"):
        response = await agent.http.post(f"/threads/{thread_id}/runs/{route}", headers=headers, json=body)
        assert response.status_code == status, response.text
        assert expected in response.json()["detail"]
    assert await _messages(agent.http, headers, thread_id) == []
    assert (await agent.http.get(f"/threads/{thread_id}/runs", headers=headers)).json() == []


async def test_a_run_on_a_thread_that_does_not_exist_is_404(agent: InProcess, user: tuple[Any, Headers]) -> None:
    _, headers = user
    missing = "00000000-0000-4000-8000-000000000000"
    response = await agent.http.post(f"/threads/{missing}/runs/stream", headers=headers, json=run_body())
    assert response.status_code == 404
    response = await agent.http.post("/threads/not-a-uuid/runs/stream", headers=headers, json=run_body())
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("failure", "kind", "words"),
    [
        ("status_500", "model_error", "The language model failed (HTTP 500)."),
        ("garbage", "model_error", "The language model sent a response Docent could not read."),
        ("hang", "model_timeout", "The language model did not answer in time."),
    ],
)
async def test_a_failing_model_ends_the_run_with_an_error_event_and_keeps_the_question(
    llm_settings: Callable[..., Settings],
    embedder: Embedder,
    model_server: ScriptedOpenAI,
    user: tuple[Any, Headers],
    failure: Any,
    kind: str,
    words: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, headers = user
    async with running(app_with(llm_settings(chat_timeout_seconds=0.5), embedder)) as served:
        await upload_manual(served, headers)
        thread_id = await new_thread(served.http, headers)
        model_server.script.append(Reply(failure=failure))

        _, events = await stream(served.http, headers, thread_id, "What does VACUUM do?", stream_mode="messages-tuple")

        assert events[-1] == ("error", {"error": kind, "message": f"{words} " + _RETRY})
        failed = [r for r in caplog.records if r.getMessage() == "run_failed"]  # for whoever runs the service
        assert [(r.levelname, r.__dict__["error"], r.__dict__["run_id"]) for r in failed] == [
            ("WARNING", kind, events[0][1]["run_id"])
        ]
        assert [m["content"] for m in await _messages(served.http, headers, thread_id)] == ["What does VACUUM do?"]
        runs = (await served.http.get(f"/threads/{thread_id}/runs", headers=headers)).json()
        assert runs[0]["status"] == "error"
        # Joined once it has ended (as any replica would answer): the same error, named alike.
        joined = await served.http.get(f"/threads/{thread_id}/runs/{runs[0]['run_id']}/join", headers=headers)
        assert joined.json() == {"__error__": events[-1][1]}
        thread = (await served.http.get(f"/threads/{thread_id}", headers=headers)).json()
        assert thread["status"] == "error"

        _, events = await stream(served.http, headers, thread_id, "What does VACUUM do?", stream_mode="values")
        final = events[-1][1]
        assert final["messages"][-1]["content"].startswith("According to your documents")
        assert [m["type"] for m in final["messages"]] == ["human", "human", "ai", "tool", "ai"]
        metrics = (await served.http.get("/metrics")).text
        assert f'docent_errors_total{{kind="{kind}"}} 1.0' in metrics


_RETRY = "Your message is kept in the conversation; ask again to retry."


async def _start_hanging_run(served: InProcess, headers: Headers, server: ScriptedOpenAI, thread_id: str) -> str:
    server.script.append(Reply(failure="hang"))
    response = await served.http.post(f"/threads/{thread_id}/runs", headers=headers, json=run_body())
    assert response.status_code == 200
    assert response.headers["content-location"].endswith(response.json()["run_id"])
    await asyncio.to_thread(server.hanging.wait, 10)
    return str(response.json()["run_id"])


async def _hanging_then_queued(served: InProcess, headers: Headers, server: ScriptedOpenAI) -> tuple[str, str, str]:
    """A new thread, a run on it whose model call hangs, and a run queued behind it (ids)."""
    thread_id = await new_thread(served.http, headers)
    holder = await _start_hanging_run(served, headers, server, thread_id)
    body = run_body("Queued question?", multitask_strategy="enqueue")
    queued = await served.http.post(f"/threads/{thread_id}/runs", headers=headers, json=body)
    assert queued.status_code == 200
    return thread_id, holder, str(queued.json()["run_id"])


async def test_a_second_run_on_a_busy_thread_is_rejected_and_cancel_frees_it(
    agent: InProcess, user: tuple[Any, Headers], model_server: ScriptedOpenAI
) -> None:
    _, headers = user
    await upload_manual(agent, headers)
    thread_id = await new_thread(agent.http, headers)
    run_id = await _start_hanging_run(agent, headers, model_server, thread_id)
    assert (await agent.http.get(f"/threads/{thread_id}", headers=headers)).json()["status"] == "busy"

    for route in ("stream", "wait", ""):
        response = await agent.http.post(
            f"/threads/{thread_id}/runs/{route}".rstrip("/"), headers=headers, json=run_body()
        )
        assert response.status_code == 409
        assert response.json()["detail"].startswith("Thread is already running a task.")

    cancel = await agent.http.post(f"/threads/{thread_id}/runs/{run_id}/cancel?wait=1", headers=headers)
    assert cancel.status_code == 200
    assert cancel.json()["messages"][0]["content"] == "What does VACUUM do?"
    run = (await agent.http.get(f"/threads/{thread_id}/runs/{run_id}", headers=headers)).json()
    assert run["status"] == "interrupted"
    again = await agent.http.post(f"/threads/{thread_id}/runs/{run_id}/cancel", headers=headers)
    assert again.status_code == 404

    response, events = await stream(agent.http, headers, thread_id, "What does VACUUM do?")
    assert response.status_code == 200
    messages = events[-1][1]["messages"]
    assert [m["type"] for m in messages] == ["human", "human", "ai", "tool", "ai"]


async def test_enqueue_waits_for_the_run_in_flight(
    agent: InProcess, user: tuple[Any, Headers], model_server: ScriptedOpenAI
) -> None:
    _, headers = user
    await upload_manual(agent, headers)
    thread_id = await new_thread(agent.http, headers)
    first = await _start_hanging_run(agent, headers, model_server, thread_id)
    queued = await agent.http.post(
        f"/threads/{thread_id}/runs", headers=headers, json=run_body("Indexes?", multitask_strategy="enqueue")
    )
    assert queued.json()["status"] == "pending"
    interrupting = agent.http.post(
        f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body("Vacuum?", multitask_strategy="interrupt")
    )
    final = (await interrupting).json()

    statuses = {
        r["run_id"]: r["status"] for r in (await agent.http.get(f"/threads/{thread_id}/runs", headers=headers)).json()
    }
    assert statuses[first] == "interrupted"
    assert statuses[queued.json()["run_id"]] in {"interrupted", "success"}
    assert final["messages"][-1]["content"].startswith("According to your documents")
    assert final["messages"][-1]["type"] == "ai"


async def test_a_run_over_its_time_limit_stops_with_a_timeout_event(
    llm_settings: Callable[..., Settings], embedder: Embedder, model_server: ScriptedOpenAI, user: tuple[Any, Headers]
) -> None:
    _, headers = user
    async with running(app_with(llm_settings(run_timeout_seconds=0.5), embedder)) as served:
        thread_id = await new_thread(served.http, headers)
        model_server.script.append(Reply(failure="hang"))
        response = await served.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body())
        assert response.json() == {
            "__error__": {
                "error": "run_timeout",
                "message": f"The run took longer than 0.5 s and was stopped. {_RETRY}",
            }
        }
        run = (await served.http.get(f"/threads/{thread_id}/runs", headers=headers)).json()[0]
        assert run["status"] == "timeout"


async def test_the_daily_token_budget_and_the_run_rate_answer_429_with_retry_after(
    llm_settings: Callable[..., Settings], embedder: Embedder, user: tuple[Any, Headers], database_url: str
) -> None:
    _, headers = user
    async with running(app_with(llm_settings(daily_token_budget=50, runs_per_minute=0), embedder)) as served:
        thread_id = await new_thread(served.http, headers)
        assert (await stream(served.http, headers, thread_id))[0].status_code == 200
        usage = (await served.http.get("/me", headers=headers)).json()["usage"]
        assert usage["today"]["input_tokens"] > 50
        assert usage["today"]["runs"] == 1
        assert usage["daily_token_budget"] == 50
        response, _ = await stream(served.http, headers, thread_id)
        assert response.status_code == 429
        assert response.json()["error"] == "token_budget_exceeded"
        assert 0 < int(response.headers["retry-after"]) <= 86400

    headers = other_user_headers(database_url)
    async with running(app_with(llm_settings(runs_per_minute=2), embedder)) as served:
        for _ in range(2):
            thread_id = await new_thread(served.http, headers)
            assert (await stream(served.http, headers, thread_id))[0].status_code == 200
            # Deleting the thread (and its runs) does not give the slot back.
            assert (await served.http.delete(f"/threads/{thread_id}", headers=headers)).status_code == 204
        thread_id = await new_thread(served.http, headers)
        response, _ = await stream(served.http, headers, thread_id)
        assert response.status_code == 429
        assert response.json()["error"] == "rate_limited"
        assert 0 < int(response.headers["retry-after"]) <= 60
        # A thread that is not theirs is still 404, and the refused run left no trace.
        missing, _ = await stream(served.http, headers, str(uuid.uuid4()))
        assert missing.status_code == 404
        thread = (await served.http.get(f"/threads/{thread_id}", headers=headers)).json()
        assert (thread["status"], thread["title"]) == ("idle", None)
        assert (await served.http.get(f"/threads/{thread_id}/runs", headers=headers)).json() == []


async def test_runs_report_tokens_latency_and_first_token_in_metrics(
    agent: InProcess, user: tuple[Any, Headers]
) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)
    await stream(agent.http, headers, thread_id, stream_mode="messages-tuple")
    metrics = (await agent.http.get("/metrics")).text
    assert (
        'docent_http_requests_total{method="POST",route="/threads/{thread_id}/runs/stream",status="200"} 1.0' in metrics
    )
    assert 'docent_run_duration_seconds_count{status="success"} 1.0' in metrics
    assert "docent_run_time_to_first_token_seconds_count 1.0" in metrics
    assert 'docent_retrieval_duration_seconds_count{mode="hybrid"} 1.0' in metrics
    tokens = [line for line in metrics.splitlines() if line.startswith('docent_llm_tokens_total{kind="output"}')]
    assert float(tokens[0].split()[-1]) > 0


async def test_runs_orphaned_by_a_crash_are_failed_at_start_and_the_thread_works(
    llm_settings: Callable[..., Settings], embedder: Embedder, user: tuple[Any, Headers], database_url: str
) -> None:
    user_id, headers = user
    async with running(app_with(llm_settings(), embedder)) as served:
        thread_id = await new_thread(served.http, headers)
        live_thread = await new_thread(served.http, headers)
    crashed, alive = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:  # what a SIGKILL mid-run leaves behind
        conn.execute(
            "update threads set status = 'busy', locked_until = now() - interval '1 second' where id = %s", (thread_id,)
        )
        for run_id, thread in ((crashed, thread_id), (alive, live_thread)):
            insert_run(conn, run_id, thread, user_id, "running")
        conn.execute(
            "update threads set status = 'busy', locked_until = now() + interval '1 minute', lease_run_id = %s"
            " where id = %s",
            (alive, live_thread),
        )

    async with running(app_with(llm_settings(), embedder)) as served:
        run = (await served.http.get(f"/threads/{thread_id}/runs/{crashed}", headers=headers)).json()
        assert run["status"] == "error"
        assert run["error"].startswith("The service stopped during this run.")
        joined = (await served.http.get(f"/threads/{thread_id}/runs/{crashed}/join", headers=headers)).json()
        assert joined["__error__"] == {"error": "run_orphaned", "message": run["error"]}
        other = (await served.http.get(f"/threads/{live_thread}/runs/{alive}", headers=headers)).json()
        assert other["status"] == "running", "another replica's run, its lease still fresh, is left alone"
        response, _ = await stream(served.http, headers, thread_id)
        assert response.status_code == 200


async def test_cancelling_twice_still_ends_the_run_once(
    agent: InProcess, user: tuple[Any, Headers], model_server: ScriptedOpenAI
) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)
    run_id = await _start_hanging_run(agent, headers, model_server, thread_id)
    live = agent.state["runs"].live(uuid.UUID(run_id))
    live.cancel()
    live.cancel()
    joined = await agent.http.get(f"/threads/{thread_id}/runs/{run_id}/join", headers=headers)
    assert joined.json()["messages"][0]["content"] == "What does VACUUM do?"
    assert (await agent.http.get(f"/threads/{thread_id}/runs/{run_id}", headers=headers)).json()["status"] == (
        "interrupted"
    )
    assert agent.state["runs"].live(uuid.UUID(run_id)) is None
    model_server.script.append(Reply("Fine now."))
    response = await agent.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body())
    assert response.json()["messages"][-1]["content"] == "Fine now."


async def test_concurrent_requests_cannot_both_take_the_last_run_slot(
    llm_settings: Callable[..., Settings], embedder: Embedder, user: tuple[Any, Headers]
) -> None:
    _, headers = user
    async with running(app_with(llm_settings(runs_per_minute=1), embedder)) as served:
        threads = [await new_thread(served.http, headers) for _ in range(4)]
        results = await asyncio.gather(*(stream(served.http, headers, thread_id) for thread_id in threads))
    assert sorted(response.status_code for response, _ in results) == [200, 429, 429, 429]


async def test_shutdown_lets_runs_in_flight_finish_within_the_grace_then_cancels_the_rest(
    agent: InProcess, user: tuple[Any, Headers], model_server: ScriptedOpenAI
) -> None:
    _, headers = user
    runs = agent.state["runs"]
    gate = threading.Event()
    model_server.script.append(Reply("Finished while the service drained.", gate=gate))
    finishing = await new_thread(agent.http, headers)
    finishing_run = (await agent.http.post(f"/threads/{finishing}/runs", headers=headers, json=run_body())).json()

    stopping = asyncio.create_task(runs.stop(grace=30))
    await asyncio.sleep(0)  # a yield, not a wait: `stop` is now waiting on the run
    assert not stopping.done()
    gate.set()
    await stopping
    run = await agent.http.get(f"/threads/{finishing}/runs/{finishing_run['run_id']}", headers=headers)
    assert run.json()["status"] == "success"

    for grace in (0.2, 0):  # a run that outlasts the grace, and no grace at all
        hanging = await new_thread(agent.http, headers)
        hanging_run = await _start_hanging_run(agent, headers, model_server, hanging)
        model_server.hanging.clear()
        await runs.stop(grace=grace)
        run = await agent.http.get(f"/threads/{hanging}/runs/{hanging_run}", headers=headers)
        assert run.json()["status"] == "interrupted"


async def test_connections_the_database_dropped_are_replaced_before_the_next_run(
    agent: InProcess, user: tuple[Any, Headers], database_url: str
) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)
    first = await agent.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body())
    assert first.status_code == 200
    with psycopg.connect(database_url, autocommit=True) as conn:  # what a database restart does to them
        ended = conn.execute(
            "select count(pg_terminate_backend(pid, 5000)) from pg_stat_activity"
            " where backend_type = 'client backend' and pid <> pg_backend_pid()"
        ).fetchone()
    assert ended is not None
    assert ended[0] >= 2, "the service's pools held connections"

    again = await agent.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body("And again?"))
    assert again.status_code == 200
    assert "__error__" not in again.json()
    assert [m["type"] for m in again.json()["messages"]][-1] == "ai"


async def test_the_periodic_sweep_fails_a_dead_process_runs_but_never_its_own(
    agent: InProcess, user: tuple[Any, Headers], model_server: ScriptedOpenAI, database_url: str
) -> None:
    user_id, headers = user
    runs = agent.state["runs"]
    dead_thread, taken_thread = await new_thread(agent.http, headers), await new_thread(agent.http, headers)
    dead_run, taken_run, taker = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    own_thread = await new_thread(agent.http, headers)
    own_run = await _start_hanging_run(agent, headers, model_server, own_thread)
    with psycopg.connect(database_url, autocommit=True) as conn:
        # A process killed and restarted within the lease left `dead_run` and `taken_run`.
        # Since then `dead_run`'s lease has lapsed, and `taker` has taken `taken_run`'s
        # thread over. This process's own run looks like the first (a stalled renewal).
        for run_id, thread in ((dead_run, dead_thread), (taken_run, taken_thread), (taker, taken_thread)):
            insert_run(conn, run_id, thread, user_id, "running")
        conn.execute(
            "update threads set status = 'busy', locked_until = now() - interval '1 second' where id in (%s, %s)",
            (dead_thread, own_thread),
        )
        conn.execute(
            "update threads set status = 'busy', locked_until = now() + interval '1 minute', lease_run_id = %s"
            " where id = %s",
            (taker, taken_thread),
        )

    assert await runs.orphans.sweep() == 2
    for thread, run_id in ((dead_thread, dead_run), (taken_thread, taken_run)):
        dead = (await agent.http.get(f"/threads/{thread}/runs/{run_id}", headers=headers)).json()
        assert dead["status"] == "error"
        assert dead["error"].startswith("The service stopped during this run.")
    taking = (await agent.http.get(f"/threads/{taken_thread}/runs/{taker}", headers=headers)).json()
    assert taking["status"] == "running", "the run holding the lease is left alone"
    own = (await agent.http.get(f"/threads/{own_thread}/runs/{own_run}", headers=headers)).json()
    assert own["status"] == "running"
    with psycopg.connect(database_url) as conn:  # and it keeps its thread: the sweep frees only others'
        held = conn.execute("select status, lease_run_id from threads where id = %s", (own_thread,)).fetchone()
    assert held == ("busy", uuid.UUID(own_run))
    await agent.http.post(f"/threads/{own_thread}/runs/{own_run}/cancel?wait=1", headers=headers)


def test_a_database_outage_during_a_run_is_told_in_words_not_as_an_internal_error() -> None:
    outage = sqlalchemy.exc.OperationalError("select 1", {}, psycopg.OperationalError("server closed the connection"))
    assert describe(outage) == (
        "database_unavailable",
        "The database became unavailable during the run. Your message is kept in the conversation; ask again to retry.",
    )
    assert describe(PoolTimeout("no connection in 5 s"))[0] == "database_unavailable"


async def test_cancelling_and_waiting_holds_no_database_connection_meanwhile(
    llm_settings: Callable[..., Settings], embedder: Embedder, user: tuple[Any, Headers], model_server: ScriptedOpenAI
) -> None:
    _, headers = user
    # Two pooled connections in all: waiting cancellers holding them would leave the run
    # none to record its end with, and every request would wait for the pool's timeout.
    async with running(app_with(llm_settings(database_pool_size=1), embedder)) as served:
        thread_id = await new_thread(served.http, headers)
        run_id = await _start_hanging_run(served, headers, model_server, thread_id)
        cancel = f"/threads/{thread_id}/runs/{run_id}/cancel?wait=1"
        async with asyncio.timeout(15):
            responses = await asyncio.gather(*(served.http.post(cancel, headers=headers) for _ in range(3)))
        assert {r.status_code for r in responses} <= {200, 404}
        assert any(r.status_code == 200 for r in responses)
        run = await served.http.get(f"/threads/{thread_id}/runs/{run_id}", headers=headers)
        assert run.json()["status"] == "interrupted"


async def test_deleting_threads_with_runs_in_flight_holds_no_connection_while_they_end(
    llm_settings: Callable[..., Settings], embedder: Embedder, user: tuple[Any, Headers], model_server: ScriptedOpenAI
) -> None:
    _, headers = user
    async with running(app_with(llm_settings(database_pool_size=1), embedder)) as served:
        thread_ids = [await new_thread(served.http, headers) for _ in range(3)]
        for thread_id in thread_ids:
            await _start_hanging_run(served, headers, model_server, thread_id)
            model_server.hanging.clear()
        async with asyncio.timeout(15):
            deleted = await asyncio.gather(*(served.http.delete(f"/threads/{t}", headers=headers) for t in thread_ids))
        assert [r.status_code for r in deleted] == [204, 204, 204]
        for thread_id in thread_ids:
            assert (await served.http.get(f"/threads/{thread_id}", headers=headers)).status_code == 404


async def test_a_wait_whose_thread_is_deleted_mid_run_says_so(
    agent: InProcess, user: tuple[Any, Headers], model_server: ScriptedOpenAI
) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)
    model_server.script.append(Reply(failure="hang"))
    waiting = asyncio.create_task(agent.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body()))
    await asyncio.to_thread(model_server.hanging.wait, 10)
    assert (await agent.http.delete(f"/threads/{thread_id}", headers=headers)).status_code == 204
    response = await waiting
    assert response.status_code == 200  # the body had begun
    assert response.json() == {
        "__error__": {"error": "thread_deleted", "message": "The thread was deleted while the run was in flight."}
    }
    metrics = (await agent.http.get("/metrics")).text
    assert 'kind="thread_deleted"' not in metrics  # the user's own doing: not a failure
    assert 'docent_run_duration_seconds_count{status="interrupted"} 1.0' in metrics


async def test_a_run_whose_lease_renewal_finds_the_thread_taken_stops_with_lease_lost(
    agent: InProcess,
    user: tuple[Any, Headers],
    model_server: ScriptedOpenAI,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run stalled past its lease, whose thread another run has taken, learns it at its next
    renewal: it stops there, and says so, rather than ending as if cancelled by its user."""
    _, headers = user
    monkeypatch.setattr(lease, "LEASE_SECONDS", 0.3)  # renewed every 0.1 s; leases are still 30 s
    thread_id = await new_thread(agent.http, headers)
    model_server.script.append(Reply(failure="hang"))
    waiting = asyncio.create_task(agent.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body()))
    assert await asyncio.to_thread(model_server.hanging.wait, 10)
    with psycopg.connect(database_url, autocommit=True) as conn:  # as another replica's run would after a lapse
        conn.execute("update threads set lease_run_id = gen_random_uuid() where id = %s", (thread_id,))
    async with asyncio.timeout(10):
        response = await waiting
    error = response.json()["__error__"]
    assert error["error"] == "lease_lost"
    assert error["message"] == f"{LEASE_LOST} Your message was not saved; send it again."
    runs = (await agent.http.get(f"/threads/{thread_id}/runs", headers=headers)).json()
    assert [(run["status"], run["error"]) for run in runs] == [("error", error["message"])]


@pytest.mark.parametrize("route", ["/threads/{thread_id}", "/me/data"])
async def test_deleting_a_thread_while_a_stalled_run_records_its_end_neither_deadlocks(
    agent: InProcess, user: tuple[Any, Headers], database_url: str, route: str
) -> None:
    """A run whose lease has lapsed (another replica's, stalled) records its end as its thread
    is deleted: the run's row, then the thread's, as `finish_run` does, with the delete
    coming between the two. Both go through."""
    user_id, headers = user
    thread_id = await new_thread(agent.http, headers)
    run_id = uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        insert_run(conn, run_id, thread_id, user_id, "running")
        conn.execute(
            "update threads set status = 'busy', lease_run_id = %s, locked_until = now() - interval '1 second'"
            " where id = %s",
            (run_id, thread_id),
        )
    with psycopg.connect(database_url) as finishing, psycopg.connect(database_url, autocommit=True) as probe:
        finishing.execute("update runs set status = 'success' where id = %s", (run_id,))
        deleting = asyncio.create_task(agent.http.delete(route.format(thread_id=thread_id), headers=headers))
        waiting = (
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()"
        )
        async with asyncio.timeout(10):
            while probe.execute(waiting).fetchone() != (1,):  # noqa: ASYNC110 (a test's probe)
                await asyncio.sleep(0.01)  # until the delete waits for the run's row
        finishing.execute(
            "update threads set status = 'idle', lease_run_id = null, locked_until = null where id = %s", (thread_id,)
        )
        finishing.commit()
    async with asyncio.timeout(10):
        deleted = await deleting
    assert deleted.status_code == 204, deleted.text
    assert (await agent.http.get(f"/threads/{thread_id}", headers=headers)).status_code == 404


async def test_a_run_cancelled_before_its_task_began_still_records_its_end(
    agent: InProcess, user: tuple[Any, Headers]
) -> None:
    """A shutdown just after a run's launch cancels it before its task has run a line: it
    must still record its end, not stay `running` until a sweep fails it."""
    user_id, headers = user
    thread_id = uuid.UUID(await new_thread(agent.http, headers))
    runs: RunManager = agent.state["runs"]
    spec = RunSpec(thread_id=thread_id, question="What does VACUUM do?")
    async with user_transaction(agent.state["sessions"], acting_as(user_id)) as session:
        run, live = await runs.admit(session, user_id=user_id, spec=spec, run_id=uuid.uuid4())
    runs.launch(live, spec)
    live.cancel()  # in the same step of the loop: the task has not begun
    async with asyncio.timeout(10):
        await live.done.wait()
    recorded = (await agent.http.get(f"/threads/{thread_id}/runs/{run.id}", headers=headers)).json()
    assert recorded["status"] == "interrupted"
    assert (await agent.http.get(f"/threads/{thread_id}", headers=headers)).json()["status"] == "idle"


async def test_the_sweep_spares_queued_runs_whose_process_is_waiting(
    agent: InProcess, user: tuple[Any, Headers], database_url: str
) -> None:
    user_id, headers = user
    handing_over, abandoned, dead_holder = [await new_thread(agent.http, headers) for _ in range(3)]
    waiting, stranded, behind_the_dead = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        # Queued runs of another replica: one whose thread was released a moment ago (it is
        # about to take it); one whose thread was released a minute ago and never taken, and
        # which its process stopped touching; one, still touched, waiting behind a run whose
        # lease has just lapsed (its process died).
        for run_id, thread in ((waiting, handing_over), (stranded, abandoned), (behind_the_dead, dead_holder)):
            insert_run(conn, run_id, thread, user_id, "pending")
        conn.execute(
            "update threads set status = 'idle', locked_until = null, updated_at = now() - interval '1 minute'"
            " where id = %s",
            (abandoned,),
        )
        conn.execute("update runs set updated_at = now() - interval '1 minute' where id = %s", (stranded,))
        conn.execute(
            "update threads set status = 'busy', lease_run_id = %s, locked_until = now() - interval '1 second'"
            " where id = %s",
            (uuid.uuid4(), dead_holder),
        )

    assert await agent.state["runs"].orphans.sweep() == 1
    runs = ((waiting, handing_over), (stranded, abandoned), (behind_the_dead, dead_holder))
    statuses = {
        run_id: (await agent.http.get(f"/threads/{thread}/runs/{run_id}", headers=headers)).json()["status"]
        for run_id, thread in runs
    }
    assert statuses == {waiting: "pending", stranded: "error", behind_the_dead: "pending"}


async def test_each_sweep_shows_this_processs_queued_runs_alive(
    agent: InProcess, user: tuple[Any, Headers], model_server: ScriptedOpenAI, database_url: str
) -> None:
    _, headers = user
    thread_id, holder, queued = await _hanging_then_queued(agent, headers, model_server)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update runs set updated_at = now() - interval '1 minute' where id = %s", (queued,))
        await agent.state["runs"].orphans.sweep()
        row = conn.execute("select updated_at > now() - interval '10 seconds' from runs where id = %s", (queued,))
        assert row.fetchone() == (True,)  # other replicas' sweeps will leave it alone
    await agent.http.post(f"/threads/{thread_id}/runs/{holder}/cancel?wait=1", headers=headers)


async def test_a_run_end_recorded_twice_counts_once(agent: InProcess, user: tuple[Any, Headers]) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)
    response = await agent.http.post(f"/threads/{thread_id}/runs", headers=headers, json=run_body())
    run_id = uuid.UUID(response.json()["run_id"])
    await agent.http.get(f"/threads/{thread_id}/runs/{run_id}/join", headers=headers)
    usage = (await agent.http.get("/me", headers=headers)).json()["usage"]
    async with service_transaction(agent.state["sessions"]) as session:  # a retry after a lost commit reply
        again = await runs_db.finish_run(
            session,
            run_id=run_id,
            status="error",
            error_kind="model_error",
            error="late",
            input_tokens=5,
            output_tokens=5,
            release="error",
        )
    assert again is False
    assert (await agent.http.get(f"/threads/{thread_id}/runs/{run_id}", headers=headers)).json()["status"] == "success"
    assert (await agent.http.get("/me", headers=headers)).json()["usage"] == usage


async def test_a_queued_run_waits_out_the_lease_of_a_dead_process_that_took_the_thread(
    agent: InProcess, user: tuple[Any, Headers], model_server: ScriptedOpenAI, database_url: str
) -> None:
    _, headers = user
    thread_id, holder, queued = await _hanging_then_queued(agent, headers, model_server)
    with psycopg.connect(database_url, autocommit=True) as conn:  # a run no one will finish takes the thread
        conn.execute(
            "update threads set lease_run_id = %s, locked_until = now() + interval '1 second' where id = %s",
            (uuid.uuid4(), thread_id),
        )
    await agent.http.post(f"/threads/{thread_id}/runs/{holder}/cancel?wait=1", headers=headers)

    joined = await agent.http.get(f"/threads/{thread_id}/runs/{queued}/join", headers=headers)
    questions = [m["content"] for m in joined.json()["messages"] if m["type"] == "human"]
    assert questions == ["Queued question?"]  # the holder had lost the thread: its last write was refused


async def test_a_run_whose_question_never_reached_the_thread_says_so(
    agent: InProcess, user: tuple[Any, Headers], model_server: ScriptedOpenAI, database_url: str
) -> None:
    _, headers = user
    thread_id, holder, queued = await _hanging_then_queued(agent, headers, model_server)
    runs: RunManager = agent.state["runs"]
    waiting, running = runs.live(uuid.UUID(queued)), runs.live(uuid.UUID(holder))
    assert waiting is not None
    assert running is not None
    with psycopg.connect(database_url, autocommit=True) as conn:  # the thread goes while the run waits
        conn.execute("delete from threads where id = %s", (thread_id,))
    running.cancel()
    async with asyncio.timeout(10):
        await waiting.done.wait()
    assert waiting.error is not None
    assert waiting.error["message"].endswith("Your message was not saved; send it again.")


async def test_a_cancel_after_the_answer_does_not_cut_its_checkpoint_write_short(
    agent: InProcess, user: tuple[Any, Headers], monkeypatch: pytest.MonkeyPatch
) -> None:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    _, headers = user
    await upload_manual(agent, headers)
    thread_id = await new_thread(agent.http, headers)
    # A first turn writes the thread's empty start too; on the second, the one write is the end.
    assert (await agent.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body())).is_success
    writing, release = asyncio.Event(), asyncio.Event()
    put = AsyncPostgresSaver.aput

    async def held_put(self: AsyncPostgresSaver, *args: Any, **kwargs: Any) -> Any:
        writing.set()
        await release.wait()  # the run's one checkpoint write, as its answer is complete
        return await put(self, *args, **kwargs)

    monkeypatch.setattr(AsyncPostgresSaver, "aput", held_put)
    started = await agent.http.post(f"/threads/{thread_id}/runs", headers=headers, json=run_body())
    run_id = started.json()["run_id"]
    await writing.wait()
    cancelled = await agent.http.post(f"/threads/{thread_id}/runs/{run_id}/cancel", headers=headers)
    assert cancelled.status_code == 202
    release.set()

    joined = (await agent.http.get(f"/threads/{thread_id}/runs/{run_id}/join", headers=headers)).json()
    run = (await agent.http.get(f"/threads/{thread_id}/runs/{run_id}", headers=headers)).json()
    assert run["status"] == "success"
    assert joined["messages"][-1]["content"].startswith("According to your documents")
    state = (await agent.http.get(f"/threads/{thread_id}/state", headers=headers)).json()
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai", "tool", "ai"] * 2


@pytest.mark.settings(run_timeout_seconds=1)
async def test_a_turn_answered_near_its_time_limit_is_still_written(
    agent: InProcess, user: tuple[Any, Headers], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)
    put = AsyncPostgresSaver.aput
    delayed = False

    async def slow_put(self: AsyncPostgresSaver, *args: Any, **kwargs: Any) -> Any:
        nonlocal delayed
        if not delayed:  # the run's first write, after its answer, outlasts the whole run's limit
            delayed = True
            await asyncio.sleep(1.0)  # a slow database, not a wait for another task
        return await put(self, *args, **kwargs)

    monkeypatch.setattr(AsyncPostgresSaver, "aput", slow_put)
    response = await agent.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body())

    assert response.status_code == 200
    assert "__error__" not in response.json()
    assert response.json()["messages"][-1]["type"] == "ai"
    runs = (await agent.http.get(f"/threads/{thread_id}/runs", headers=headers)).json()
    assert [run["status"] for run in runs] == ["success"]
    state = (await agent.http.get(f"/threads/{thread_id}/state", headers=headers)).json()
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai", "tool", "ai"]


@pytest.fixture
def embedding_down(embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The embedding model failing every call; the texts it was asked to embed."""
    asked: list[str] = []

    async def unreachable(text: str) -> list[float]:
        asked.append(text)
        raise RuntimeError("the embedding service is down")

    monkeypatch.setattr(embedder, "embed_query", unreachable)
    return asked


def _no_error_left_unretrieved(caplog: pytest.LogCaptureFixture) -> None:
    gc.collect()  # an unretrieved error is reported when its task is collected
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


async def test_a_run_refused_at_admission_drops_the_embedding_it_started(
    agent: InProcess, user: tuple[Any, Headers], embedding_down: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    _, headers = user
    missing = await agent.http.post(f"/threads/{uuid.uuid4()}/runs/wait", headers=headers, json=run_body())
    assert missing.status_code == 404
    assert embedding_down == ["What does VACUUM do?"]  # started with the admission, before it was refused
    _no_error_left_unretrieved(caplog)


async def test_a_run_that_fails_before_its_search_drops_the_search_started_early(
    agent: InProcess,
    user: tuple[Any, Headers],
    embedding_down: list[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, headers = user
    thread_id = await new_thread(agent.http, headers)

    async def unreadable(saver: Any, config: Any) -> Any:
        raise psycopg.OperationalError("the database went away")

    monkeypatch.setattr(AsyncPostgresSaver, "aget_tuple", unreadable)
    _, events = await stream(agent.http, headers, thread_id, "What does VACUUM do?")
    assert events[-1][0] == "error"
    _no_error_left_unretrieved(caplog)
