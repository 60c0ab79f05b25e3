"""Start-up time of `make run` until /health/ready answers 200 (`make bench`).

"cold": a new DATA_DIR, so initdb, the server start and every migration run; "warm": the
same DATA_DIR again. Each run is stopped the way a terminal's Ctrl-C stops it (SIGINT to
the process group), and the time that takes is reported too.
"""

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
RUNS = 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_once(data_dir: Path) -> tuple[float, float]:
    port = _free_port()
    env = {**os.environ, "DATA_DIR": str(data_dir), "PORT": str(port)}
    started = time.perf_counter()
    process = subprocess.Popen(
        ["make", "-s", "run"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while True:
            if process.poll() is not None:
                sys.exit(f"make run exited with {process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.02)  # poll interval of the measurement loop
        ready = time.perf_counter() - started
    finally:
        stopping = time.perf_counter()
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    return ready, time.perf_counter() - stopping


def main() -> None:
    subprocess.run(["make", "-s", "sync"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    cold, warm, stops = [], [], []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory(dir=REPO / ".data" if (REPO / ".data").is_dir() else None) as tmp:
            ready, stop = _run_once(Path(tmp) / "data")
            cold.append(ready)
            stops.append(stop)
            ready, stop = _run_once(Path(tmp) / "data")
            warm.append(ready)
            stops.append(stop)
    print(f"make run until /health/ready = 200, {RUNS} runs each (seconds; median, min-max)")
    for name, samples in (("cold (new DATA_DIR)", cold), ("warm (same DATA_DIR)", warm), ("Ctrl-C to exit", stops)):
        print(f"  {name:22} {statistics.median(samples):6.2f}   {min(samples):.2f}-{max(samples):.2f}")


if __name__ == "__main__":
    main()
