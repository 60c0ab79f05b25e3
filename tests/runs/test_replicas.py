"""Two replicas on one database: a run held by one is cancelled, joined or stopped by a
thread's deletion through the other (LISTEN/NOTIFY signals)."""

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest

from docent.db.runs import SIGNALS_CHANNEL
from docent.main import create_app
from docent.retrieval.embeddings import Embedder
from docent.runs import LiveRun, RunManager, manager
from docent.settings import Settings
from tests.agent import new_thread, run_body, stream, upload_manual
from tests.conftest import InProcess, running
from tests.scripted_openai import Reply, ScriptedOpenAI

Headers = dict[str, str]


@pytest.fixture
async def replicas(
    llm_settings: Callable[..., Settings], embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[InProcess, InProcess]]:
    # Waiters re-read a run's row only after a minute: the tests see the `finished` signal at work.
    monkeypatch.setattr(manager, "RECHECK_SECONDS", 60.0)
    async with (
        running(create_app(llm_settings(), embedder=embedder)) as first,
        running(create_app(llm_settings(), embedder=embedder)) as second,
    ):
        for replica in (first, second):
            await _runs(replica).signals.listening.wait()
        yield first, second


def _runs(replica: InProcess) -> RunManager:
    runs: RunManager = replica.state["runs"]
    return runs


async def _start(replica: InProcess, headers: Headers, thread_id: str) -> tuple[str, LiveRun]:
    response = await replica.http.post(f"/threads/{thread_id}/runs", headers=headers, json=run_body())
    assert response.status_code == 200, response.text
    run_id = response.json()["run_id"]
    live = _runs(replica).live(uuid.UUID(run_id))
    assert live is not None  # held by this replica
    return run_id, live


async def _start_hanging(replica: InProcess, headers: Headers, model: ScriptedOpenAI) -> tuple[str, str, LiveRun]:
    """A new thread and a run on `replica` whose model call hangs until it is cancelled."""
    thread_id = await new_thread(replica.http, headers)
    model.script.append(Reply(failure="hang"))
    run_id, live = await _start(replica, headers, thread_id)
    await asyncio.to_thread(model.hanging.wait, 10)
    return thread_id, run_id, live


async def _start_held_answer(
    replica: InProcess, headers: Headers, model: ScriptedOpenAI
) -> tuple[str, str, threading.Event]:
    """A new thread and a run on `replica` that searches, then answers once the gate opens."""
    await upload_manual(replica, headers)
    thread_id = await new_thread(replica.http, headers)
    gate = threading.Event()
    model.script.append(Reply("VACUUM reclaims storage [1].", gate=gate))
    run_id, _ = await _start(replica, headers, thread_id)
    return thread_id, run_id, gate


async def _until_waiting_for(replica: InProcess, run_id: str) -> None:
    """Return once a request on `replica` waits for `run_id` to end."""
    async with asyncio.timeout(10):
        while not _runs(replica).signals.watched(uuid.UUID(run_id)):  # noqa: ASYNC110 (a test's probe)
            await asyncio.sleep(0)  # yields to the request, served in this loop: no delay


async def _drop_listeners(database_url: str, listening: asyncio.Event) -> int:
    """End every replica's listening connection; return, with how many, once the replica
    whose `listening` this is has noticed (it reconnects a moment later)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        killed = conn.execute(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = %s",
            ("docent-run-signals",),
        ).fetchone()
    async with asyncio.timeout(10):
        while listening.is_set():  # noqa: ASYNC110 (a test's probe)
            await asyncio.sleep(0)  # until the listener notices; no delay
    assert killed is not None
    return int(killed[0])


async def test_a_run_is_cancelled_through_another_replica(
    replicas: tuple[InProcess, InProcess],
    user: tuple[Any, Headers],
    model_server: ScriptedOpenAI,
    database_url: str,
) -> None:
    holder, other = replicas
    _, headers = user
    thread_id, run_id, live = await _start_hanging(holder, headers, model_server)
    assert _runs(other).live(uuid.UUID(run_id)) is None

    with psycopg.connect(database_url, autocommit=True) as conn:  # noise on the channel is ignored
        conn.execute("select pg_notify(%s, 'nonsense'), pg_notify(%s, 'cancel:not-a-uuid')", (SIGNALS_CHANNEL,) * 2)
    async with asyncio.timeout(10):
        cancel = await other.http.post(f"/threads/{thread_id}/runs/{run_id}/cancel?wait=1", headers=headers)
    assert cancel.status_code == 200, cancel.text
    assert [m["content"] for m in cancel.json()["messages"]] == ["What does VACUUM do?"]
    assert live.done.is_set()
    run = (await other.http.get(f"/threads/{thread_id}/runs/{run_id}", headers=headers)).json()
    assert run["status"] == "interrupted"
    again = await other.http.post(f"/threads/{thread_id}/runs/{run_id}/cancel", headers=headers)
    assert again.status_code == 404


async def test_joining_another_replicas_run_waits_for_its_answer(
    replicas: tuple[InProcess, InProcess], user: tuple[Any, Headers], model_server: ScriptedOpenAI
) -> None:
    holder, other = replicas
    _, headers = user
    thread_id, run_id, gate = await _start_held_answer(holder, headers, model_server)
    join = asyncio.create_task(other.http.get(f"/threads/{thread_id}/runs/{run_id}/join", headers=headers))
    await _until_waiting_for(other, run_id)
    assert not join.done()  # it waits for the end: it must not answer before
    gate.set()
    async with asyncio.timeout(10):
        joined = await join
    assert joined.status_code == 200
    assert joined.json()["messages"][-1]["content"] == "VACUUM reclaims storage [1]."


async def test_deleting_a_thread_through_another_replica_cancels_its_run(
    replicas: tuple[InProcess, InProcess], user: tuple[Any, Headers], model_server: ScriptedOpenAI
) -> None:
    holder, other = replicas
    _, headers = user
    thread_id, run_id, live = await _start_hanging(holder, headers, model_server)
    join = asyncio.create_task(holder.http.get(f"/threads/{thread_id}/runs/{run_id}/join", headers=headers))
    async with asyncio.timeout(10):
        deleted = await other.http.delete(f"/threads/{thread_id}", headers=headers)
    assert deleted.status_code == 204
    async with asyncio.timeout(10):
        await live.done.wait()
        joined = await join
    assert joined.json() == {"__error__": manager.THREAD_DELETED}  # the holder's clients are told why
    assert (await holder.http.get(f"/threads/{thread_id}", headers=headers)).status_code == 404


async def test_enqueue_through_another_replica_waits_for_the_run_in_flight(
    replicas: tuple[InProcess, InProcess], user: tuple[Any, Headers], model_server: ScriptedOpenAI
) -> None:
    holder, other = replicas
    _, headers = user
    thread_id, first, gate = await _start_held_answer(holder, headers, model_server)
    body = run_body("And indexes?", multitask_strategy="enqueue")
    queued = asyncio.create_task(other.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=body))
    await _until_waiting_for(other, first)  # the queued run waits for the first to end
    gate.set()
    async with asyncio.timeout(10):
        final = (await queued).json()
    questions = [m["content"] for m in final["messages"] if m["type"] == "human"]
    assert questions == ["What does VACUUM do?", "And indexes?"]
    assert final["messages"][3]["content"] == "VACUUM reclaims storage [1]."  # the first run's answer, whole
    runs = (await other.http.get(f"/threads/{thread_id}/runs", headers=headers)).json()
    assert [run["status"] for run in runs] == ["success", "success"]


async def test_interrupt_through_another_replica_cancels_the_run_in_flight(
    replicas: tuple[InProcess, InProcess], user: tuple[Any, Headers], model_server: ScriptedOpenAI
) -> None:
    holder, other = replicas
    _, headers = user
    thread_id, first, live = await _start_hanging(holder, headers, model_server)
    body = run_body("And indexes?", multitask_strategy="interrupt")
    async with asyncio.timeout(10):
        response = await other.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=body)
    assert response.status_code == 200, response.text
    assert live.done.is_set()
    questions = [m["content"] for m in response.json()["messages"] if m["type"] == "human"]
    assert questions == ["What does VACUUM do?", "And indexes?"]  # the interrupted run's question is kept
    first_run = (await other.http.get(f"/threads/{thread_id}/runs/{first}", headers=headers)).json()
    assert first_run["status"] == "interrupted"


async def test_a_replica_listens_again_after_losing_its_connection(
    replicas: tuple[InProcess, InProcess],
    user: tuple[Any, Headers],
    model_server: ScriptedOpenAI,
    database_url: str,
) -> None:
    holder, other = replicas
    _, headers = user
    listening = _runs(holder).signals.listening
    assert await _drop_listeners(database_url, listening) == 2  # one listener per replica
    async with asyncio.timeout(10):
        await listening.wait()  # and has connected again

    thread_id, run_id, live = await _start_hanging(holder, headers, model_server)
    async with asyncio.timeout(10):
        cancel = await other.http.post(f"/threads/{thread_id}/runs/{run_id}/cancel?wait=1", headers=headers)
    assert cancel.status_code == 200
    assert live.done.is_set()


async def test_a_cancel_sent_while_the_holder_was_not_listening_reaches_it_once_it_listens(
    replicas: tuple[InProcess, InProcess],
    user: tuple[Any, Headers],
    model_server: ScriptedOpenAI,
    database_url: str,
) -> None:
    holder, other = replicas
    _, headers = user
    thread_id, run_id, live = await _start_hanging(holder, headers, model_server)
    listening = _runs(holder).signals.listening
    await _drop_listeners(database_url, listening)
    # Sent while the holder waits to reconnect: its notification reaches no one there.
    cancel = await other.http.post(f"/threads/{thread_id}/runs/{run_id}/cancel", headers=headers)
    assert cancel.status_code == 202
    assert not live.done.is_set()

    async with asyncio.timeout(10):  # far below the run's own time limit (120 s)
        await live.done.wait()
    assert listening.is_set()
    run = (await other.http.get(f"/threads/{thread_id}/runs/{run_id}", headers=headers)).json()
    assert run["status"] == "interrupted"


async def test_a_run_that_lost_its_thread_to_another_replica_writes_nothing_to_it(
    replicas: tuple[InProcess, InProcess],
    user: tuple[Any, Headers],
    model_server: ScriptedOpenAI,
    database_url: str,
) -> None:
    """A run stalled past its lease (here its model call is held while the lease is made to
    lapse) while another replica's run takes the thread over: its late answer is refused, not
    written beside the other run's turn."""
    stale, taker = replicas
    _, headers = user
    await upload_manual(stale, headers)
    thread_id = await new_thread(stale.http, headers)
    assert (await stale.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body())).is_success
    gate = threading.Event()
    model_server.script.append(Reply("A stalled answer [1].", gate=gate))
    # Streamed, so that the model streams too, up to its gate.
    stalled = asyncio.create_task(
        stream(stale.http, headers, thread_id, "Stalled question?", stream_mode=["messages-tuple"])
    )
    assert await asyncio.to_thread(model_server.gated.wait, 10)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update threads set locked_until = now() - interval '1 second' where id = %s", (thread_id,))

    taken = await taker.http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body("And indexes?"))
    assert taken.status_code == 200, taken.text
    gate.set()
    async with asyncio.timeout(10):
        _, events = await stalled

    stale_run = events[0][1]["run_id"]
    event, error = events[-1]
    assert (event, error["error"]) == ("error", "lease_lost")
    assert error["message"].endswith("Your message was not saved; send it again.")
    run = (await taker.http.get(f"/threads/{thread_id}/runs/{stale_run}", headers=headers)).json()
    assert run["status"] == "error"
    for replica in (stale, taker):
        state = (await replica.http.get(f"/threads/{thread_id}/state", headers=headers)).json()
        questions = [m["content"] for m in state["values"]["messages"] if m["type"] == "human"]
        assert questions == ["What does VACUUM do?", "And indexes?"]
    with psycopg.connect(database_url) as conn:
        written = conn.execute(
            "select (select count(*) from langgraph.checkpoints"
            " where thread_id = %(t)s and metadata->>'run_id' = %(r)s)"
            " + (select count(*) from langgraph.checkpoint_writes where thread_id = %(t)s"
            " and position(convert_to('Stalled question?', 'UTF8') in blob) > 0)",
            {"t": thread_id, "r": stale_run},
        ).fetchone()
    assert written == (0,)
