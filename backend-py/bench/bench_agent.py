"""Agent benchmarks (`make bench`), with the scripted OpenAI-compatible model answering at once.

Each figure is measured twice in one run: through the service (`docent serve`, a real
uvicorn process: auth, the user transaction, the thread lease, the Postgres checkpointer,
SSE) and for the same graph invoked in-process with no HTTP and no checkpointer. Model
time, as the scripted server clocks it (from reading a request to its last byte; same
machine, same monotonic clock), is taken out of both, so what remains is Docent's own
time: retrieval (query embedding and search) included, as in any turn. A service turn
ends when its response has arrived whole, before this client decodes it.

1. Own time per turn, one user asking in sequence (`runs/wait`): p50 / p95, and what the
   service adds to the in-process graph, turn by turn.
2. Time to first answer token added by the service (`runs/stream`, messages-tuple).
3. Turns per second with 16 users asking at once, 4 turns each.
4. Checkpoint storage of a 40-turn thread.
"""

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from langchain_core.messages import HumanMessage

from docent.auth.tokens import mint_access_token
from docent.db.embedded import embedded_postgres
from docent.db.engine import create_engine, create_sessionmaker
from docent.db.migrations import migrate
from docent.graph import RunContext, build_graph, create_chat_model
from docent.graph.models import model_http_client
from docent.ingestion.batch import ingest_files
from docent.retrieval.embeddings import create_embedder
from docent.retrieval.retriever import Retriever
from docent.settings import LOCAL_JWT_SECRET, Settings

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the scripted model server lives with the tests
from tests.scripted_openai import Timing  # noqa: E402

MIGRATIONS = REPO / "supabase" / "migrations"
ARCHIVE = REPO.parent / "shared" / "eval" / "postgresql-15-docs-html.tar.xz"
SEQUENTIAL_TURNS, USERS, TURNS_EACH, LONG_THREAD = 30, 16, 4, 40
QUESTIONS = [
    "What does VACUUM do?",
    "How do B-tree indexes help?",
    "When should I run ANALYZE?",
    "What is a partial index?",
    "How does MVCC handle concurrent updates?",
    "What does autovacuum tune?",
    "Which isolation levels exist?",
    "What is a tablespace?",
]
Turn = Callable[[str], Awaitable[None]]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:.1f} ms, p95 {_percentile(values, 0.95) * 1000:.1f} ms"


class Model:
    """The scripted OpenAI-compatible server in a process of its own (same monotonic clock)."""

    def __init__(self, *, stderr: Any = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.scripted_openai"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        self.base_url = f"{self.url}/v1"
        self._http = httpx.Client(base_url=self.url)  # one client: a new one builds an SSL context (~30 ms)

    @property
    def timings(self) -> list[Timing]:
        return [Timing(**t) for t in self._http.get("/timings").json()]

    def stop(self) -> None:
        self._http.close()
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


def _model_seconds(model: Model, since: int) -> float:
    return sum(t.end - t.start for t in model.timings[since:])


def _model_until_first_token(model: Model, since: int) -> float:
    timings = model.timings[since:]
    answer = next(t for t in timings if t.first_token)
    return sum(t.end - t.start for t in timings if t is not answer and t.start < answer.start) + (
        answer.first_token - answer.start
    )


def _count(model: Model) -> int:
    return len(model.timings)


class Service:
    """`docent serve` in a child process, and a client for one user."""

    def __init__(self, url: str, model: Model, log: Any) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "OPENAI_BASE_URL": model.base_url,
            "OPENAI_API_KEY": "sk-bench",
            "RUNS_PER_MINUTE": "0",
            "DAILY_TOKEN_BUDGET": "0",
            "LOG_LEVEL": "WARNING",
            "PORT": str(self.port),
        }
        self.process = subprocess.Popen([sys.executable, "-m", "docent.cli", "serve"], env=env, stdout=log, stderr=log)
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling the start-up
        raise RuntimeError("docent serve did not become ready")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)


def _token(user_id: uuid.UUID) -> dict[str, str]:
    token = mint_access_token(
        secret=LOCAL_JWT_SECRET, user_id=user_id, email=f"{user_id}@bench", ttl=timedelta(hours=1), issuer=None
    )
    return {"Authorization": f"Bearer {token}"}


def _users(url: str, count: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    with psycopg.connect(url, autocommit=True) as conn:
        for user_id in ids:
            conn.execute("insert into auth.users (id, email) values (%s, %s)", (user_id, f"{user_id}@bench"))
    return ids


async def _library(url: str, users: list[uuid.UUID], workdir: Path) -> None:
    """Twenty pages of the PostgreSQL manual for every user (embedded once, then cached)."""
    import tarfile

    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(workdir, filter="data")
    pages = sorted((workdir / "corpus").glob("*.html"))
    sample = pages[:: len(pages) // 20][:20]
    engine = create_engine(url, pool_size=2)
    embedder = create_embedder(Settings())
    try:
        for user_id in users:
            await ingest_files(create_sessionmaker(engine), embedder, user_id=user_id, files=sample, max_bytes=1 << 30)
    finally:
        await engine.dispose()


def _ask(question: str) -> dict[str, Any]:
    return {"assistant_id": "docent", "input": {"messages": [{"role": "user", "content": question}]}}


async def _service_turn(http: httpx.AsyncClient, headers: dict[str, str], thread_id: str, question: str) -> float:
    """One turn through `runs/wait`; when its response had arrived whole. Decoding it comes
    after: that is this client's work (a 30-turn conversation is a few hundred kB of JSON)."""
    response = await http.post(f"/threads/{thread_id}/runs/wait", headers=headers, json=_ask(question))
    arrived = time.monotonic()
    body = response.json()
    if response.status_code != 200 or "__error__" in body:
        raise RuntimeError(f"turn failed: {response.status_code} {body}")
    return arrived


async def _service_first_token(
    http: httpx.AsyncClient, headers: dict[str, str], thread_id: str, question: str
) -> float:
    started = time.monotonic()
    first = 0.0
    body = _ask(question) | {"stream_mode": "messages-tuple"}
    async with http.stream("POST", f"/threads/{thread_id}/runs/stream", headers=headers, json=body) as response:
        async for line in response.aiter_lines():
            if not first and line.startswith("data: [") and json.loads(line[6:])[0].get("content"):
                first = time.monotonic() - started
    return first


async def main() -> None:
    async with AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(embedded_postgres(workdir / "postgres"))
        await migrate(url, MIGRATIONS)
        model = Model()
        stack.callback(model.stop)
        users = _users(url, USERS + 1)
        await _library(url, users, workdir)
        print("agent: one turn = search (local embedding + hybrid search over 20 manual pages) + one model call")

        settings = Settings(
            database_url=url, openai_base_url=model.base_url, openai_api_key="sk-bench", chat_max_retries=0
        )
        engine = create_engine(url, pool_size=20)
        stack.push_async_callback(engine.dispose)
        model_http = await stack.enter_async_context(model_http_client(settings))
        graph = build_graph(create_chat_model(settings, http_client=model_http), checkpointer=None)
        retriever = Retriever(create_embedder(Settings()))
        sessions = create_sessionmaker(engine)

        # Without a checkpointer the conversation so far is passed in, so that the model sees
        # the same history either way.
        async def inprocess_turn(user_id: uuid.UUID, question: str, history: list[Any]) -> None:
            context = RunContext(user_id=user_id, sessions=sessions, retriever=retriever)
            result = await graph.ainvoke({"messages": [*history, HumanMessage(question)]}, context=context)
            history[:] = result["messages"]

        async def inprocess_first_token(user_id: uuid.UUID, question: str, history: list[Any]) -> float:
            context = RunContext(user_id=user_id, sessions=sessions, retriever=retriever)
            started = time.monotonic()
            first = 0.0
            state: dict[str, Any] = {}
            stream = graph.astream(
                {"messages": [*history, HumanMessage(question)]}, context=context, stream_mode=["messages", "values"]
            )
            async for mode, chunk in stream:
                if mode == "values":
                    state = chunk
                elif not first and chunk[0].content and chunk[0].type == "AIMessageChunk":
                    first = time.monotonic() - started
            history[:] = state["messages"]
            return first

        log = stack.enter_context(tempfile.TemporaryFile("w+"))
        service = Service(url, model, log)
        stack.callback(service.stop)
        service.wait_ready()
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=service.base, timeout=60))
        headers = _token(users[0])
        thread_id = (await http.post("/threads", headers=headers, json={})).json()["thread_id"]

        # 1. Own time per turn.
        history: list[Any] = []
        await _service_turn(http, headers, thread_id, "warm up")
        await inprocess_turn(users[0], "warm up", history)
        own_service, own_inprocess = [], []
        for n in range(SEQUENTIAL_TURNS):
            question = QUESTIONS[n % len(QUESTIONS)]
            mark, started = _count(model), time.monotonic()
            arrived = await _service_turn(http, headers, thread_id, question)
            own_service.append(arrived - started - _model_seconds(model, mark))
            mark, started = _count(model), time.monotonic()
            await inprocess_turn(users[0], question, history)
            own_inprocess.append(time.monotonic() - started - _model_seconds(model, mark))
        ratio = statistics.median(own_service) / statistics.median(own_inprocess)
        print(
            f"  own time per turn: service {_ms(own_service)} · in-process graph {_ms(own_inprocess)} · p50 ratio {ratio:.2f}"
        )
        added_per_turn = [service - inprocess for service, inprocess in zip(own_service, own_inprocess, strict=True)]
        print(f"  added per turn by the service (pairwise): {_ms(added_per_turn)}")

        # 2. Time to first token, model time before it taken out.
        added, first_service, first_inprocess = [], [], []
        for n in range(SEQUENTIAL_TURNS):
            question = QUESTIONS[n % len(QUESTIONS)]
            mark = _count(model)
            service_first = await _service_first_token(http, headers, thread_id, question)
            first_service.append(service_first - _model_until_first_token(model, mark))
            mark = _count(model)
            inprocess_first = await inprocess_first_token(users[0], question, history)
            first_inprocess.append(inprocess_first - _model_until_first_token(model, mark))
            added.append(first_service[-1] - first_inprocess[-1])
        print(
            f"  time to first token, model excluded: service {_ms(first_service)} · in-process {_ms(first_inprocess)}"
        )
        print(f"  added by the service (pairwise): {_ms(added)}")

        # 3. Throughput with 16 users at once.
        async def service_user(user_id: uuid.UUID) -> None:
            user_headers = _token(user_id)
            thread = (await http.post("/threads", headers=user_headers, json={})).json()["thread_id"]
            for n in range(TURNS_EACH):
                await _service_turn(http, user_headers, thread, QUESTIONS[n % len(QUESTIONS)])

        async def inprocess_user(user_id: uuid.UUID) -> None:
            conversation: list[Any] = []
            for n in range(TURNS_EACH):
                await inprocess_turn(user_id, QUESTIONS[n % len(QUESTIONS)], conversation)

        rates = {}
        for name, user_task in (("service", service_user), ("in-process", inprocess_user)):
            started = time.monotonic()
            await asyncio.gather(*(user_task(user_id) for user_id in users[1:]))
            rates[name] = USERS * TURNS_EACH / (time.monotonic() - started)
        print(
            f"  {USERS} users at once, {TURNS_EACH} turns each: service {rates['service']:.1f} turns/s · "
            f"in-process {rates['in-process']:.1f} turns/s · ratio {rates['service'] / rates['in-process']:.2f}"
        )

        # 4. Checkpoint storage of a 40-turn thread.
        long_thread = (await http.post("/threads", headers=headers, json={})).json()["thread_id"]
        for n in range(LONG_THREAD):
            await _service_turn(http, headers, long_thread, QUESTIONS[n % len(QUESTIONS)])
        with psycopg.connect(url) as conn:
            sizes = conn.execute(
                """select (select coalesce(sum(pg_column_size(c.*)), 0) from langgraph.checkpoints c where thread_id = %(t)s),
                          (select coalesce(sum(pg_column_size(b.*)), 0) from langgraph.checkpoint_blobs b where thread_id = %(t)s),
                          (select coalesce(sum(pg_column_size(w.*)), 0) from langgraph.checkpoint_writes w where thread_id = %(t)s),
                          (select count(*) from langgraph.checkpoints where thread_id = %(t)s)""",
                {"t": long_thread},
            ).fetchone()
        assert sizes is not None
        total = sum(sizes[:3])
        print(
            f"  checkpoints of a {LONG_THREAD}-turn thread: {total / 1e6:.2f} MB in {sizes[3]} checkpoints "
            f"(checkpoints {sizes[0] / 1e6:.2f} MB, blobs {sizes[1] / 1e6:.2f} MB, writes {sizes[2] / 1e6:.2f} MB)"
        )


if __name__ == "__main__":
    asyncio.run(main())
