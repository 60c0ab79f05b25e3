"""`docent serve` as a real process: uvicorn with httptools, the embedded database, Ctrl-C."""

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.helpers import DOCENT, serve_process

pytestmark = pytest.mark.slow


def test_a_1mb_authorization_header_is_refused_by_the_app(database_url: str) -> None:
    with serve_process({"DATABASE_URL": database_url}) as (base, _):
        response = httpx.get(f"{base}/me", headers={"Authorization": "Bearer " + "a" * (1 << 20)}, timeout=10)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["detail"] == "token is larger than 8 KB"


def test_embedded_database_survives_ctrl_c_and_is_reused(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "data")}
    token = subprocess.run(
        [*DOCENT, "token", "--email", "ada@example.com"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}

    with serve_process(env) as (base, process):
        assert httpx.patch(f"{base}/me", headers=headers, json={"display_name": "Ada"}).status_code == 200
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert '"embedded_postgres_released"' in output
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists(), "postgres must stop with the server"

    with serve_process(env) as (base, _):
        assert httpx.get(f"{base}/me", headers=headers).json()["display_name"] == "Ada"
