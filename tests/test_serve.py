"""`docent serve` as a real process: uvicorn with httptools, the embedded database, Ctrl-C."""

import asyncio
import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from tests.agent import run_body
from tests.helpers import DOCENT, serve_process
from tests.scripted_openai import Reply, ScriptedOpenAI

pytestmark = pytest.mark.slow


def test_a_1mb_authorization_header_is_refused_by_the_app(database_url: str) -> None:
    with serve_process({"DATABASE_URL": database_url}) as (base, _):
        response = httpx.get(f"{base}/me", headers={"Authorization": "Bearer " + "a" * (1 << 20)}, timeout=10)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["detail"] == "token is larger than 8 KB"


def _token(env: dict[str, str]) -> dict[str, str]:
    """Headers with a development token for ada@example.com (`docent token`)."""
    token = subprocess.run(
        [*DOCENT, "token", "--email", "ada@example.com"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return {"Authorization": f"Bearer {token}"}


def test_embedded_database_survives_ctrl_c_and_is_reused(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "data")}
    headers = _token(env)

    with serve_process(env) as (base, process):
        assert httpx.patch(f"{base}/me", headers=headers, json={"display_name": "Ada"}).status_code == 200
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert '"embedded_postgres_released"' in output
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists(), "postgres must stop with the server"

    with serve_process(env) as (base, _):
        assert httpx.get(f"{base}/me", headers=headers).json()["display_name"] == "Ada"


async def _until_not_listening(base: str) -> None:
    async with asyncio.timeout(10), httpx.AsyncClient(base_url=base) as probe:
        while True:
            try:
                await probe.get("/health")
            except httpx.ConnectError:
                return
            await asyncio.sleep(0.01)  # polling the server's socket


async def test_ctrl_c_under_make_run_lets_the_run_in_flight_finish(
    tmp_path: Path, model_server: ScriptedOpenAI
) -> None:
    """Ctrl-C in a terminal signals the whole process group (the embedded database's too), and
    `uv run` forwards it to the server again: one SIGINT delivered twice at once. The server
    drains once; the answer being streamed arrives whole and is kept."""
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "OPENAI_BASE_URL": model_server.base_url,
        "OPENAI_API_KEY": "sk-scripted",
        "CHAT_MAX_RETRIES": "0",
    }
    headers = _token(env)
    gate = threading.Event()
    model_server.script.append(Reply("Drained, not cut.", gate=gate))
    with serve_process(env, own_group=True) as (base, process):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            thread_id = (await http.post("/threads", headers=headers, json={})).json()["thread_id"]
            body = run_body(stream_mode="messages-tuple")
            async with http.stream("POST", f"/threads/{thread_id}/runs/stream", headers=headers, json=body) as answer:
                assert await asyncio.to_thread(model_server.gated.wait, 10)
                os.killpg(process.pid, signal.SIGINT)  # the terminal's
                process.send_signal(signal.SIGINT)  # uv run's
                await _until_not_listening(base)  # shutting down, with the answer still to come
                gate.set()
                events = [line async for line in answer.aiter_lines() if line.startswith("event: ")]
        output, _ = process.communicate(timeout=30)
    assert events[-1] == "event: messages"  # no error event: the answer's last token, then the end
    assert process.returncode == 0, output
    assert "force" not in output.lower()
    with serve_process(env) as (base, _):
        async with httpx.AsyncClient(base_url=base) as http:
            state = (await http.get(f"/threads/{thread_id}/state", headers=headers)).json()
    assert state["values"]["messages"][-1]["content"] == "Drained, not cut."
