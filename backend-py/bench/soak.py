"""Reliability runs (`make soak`), issue 5: `docent serve` in a child process on loopback,
on an embedded PostgreSQL that this script starts (and restarts), with the scripted model in
a process of its own. Prints figures and checks; exits 1 if any consistency check fails.

1. Load: 50 users at once, each with a Markdown document and a 10-turn conversation of its
   own (half through runs/wait, half through runs/stream). Afterwards no message is lost,
   no thread has forked, no user saw another's data.
2. Database restart mid-load: PostgreSQL stops, stays down 3 s and starts again while the
   users converse, retrying failed turns. Failures must be clean (a JSON error or an SSE
   `error` event, no stack trace, no hang) and the service must recover by itself.
3. Service killed mid-run: SIGKILL while runs are in flight and a document is processing,
   then `docent serve` again. Threads stay consistent, orphaned runs are marked failed, the
   next run on each thread works, the document ends ready.
"""

import asyncio
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
from bench_agent import REPO, Model, _percentile, _token, _users
from soak_client import (
    TURN_TIMEOUT,
    Outcome,
    User,
    ask,
    chain_problems,
    kinds,
    large_document,
    search_isolation,
    small_document,
    thread_problems,
    unfinished_runs,
)
from soak_processes import Database, Service

from docent.db.migrations import migrate
from docent.runs.manager import LEASE_SECONDS

MIGRATIONS = REPO / "supabase" / "migrations"
LOG = REPO / ".data" / "soak" / "serve.log"
USERS, TURNS, OUTAGE_TURNS = 50, 10, 5
OUTAGE_SECONDS = 3.0
RETRY_SECONDS = 0.5  # a client's pause before asking again
LARGE_SECTIONS = 250  # about as many chunks: 15 s or more of embedding
ORPHAN_DEADLINE = LEASE_SECONDS + 30  # seconds after the kill


class Checks:
    """Prints each check as it is made, and keeps every problem found."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def __call__(self, name: str, problems: list[str]) -> None:
        print(f"  check {name}: {'ok' if not problems else f'FAILED ({len(problems)})'}")
        for problem in problems[:5]:
            print(f"    {problem}")
        self.problems += [f"{name}: {problem}" for problem in problems]


async def _until(check: Callable[[], Awaitable[bool]], *, within: float, every: float = 0.2) -> float | None:
    """Poll `check` until it is true; the seconds that took, or None past the deadline."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(every)
    return None


def _ms(values: list[float]) -> str:
    if not values:
        return "none"
    return f"p50 {statistics.median(values) * 1000:.0f} ms, p95 {_percentile(values, 0.95) * 1000:.0f} ms"


def _seconds(values: list[float]) -> str:
    return f"p50 {statistics.median(values):.1f} s, max {max(values):.1f} s" if values else "never"


async def _upload(http: httpx.AsyncClient, user: User, data: bytes, name: str) -> str:
    response = await http.post("/documents", headers=user.headers, files={"file": (name, data, "text/markdown")})
    response.raise_for_status()
    return str(response.json()["id"])


async def _status(http: httpx.AsyncClient, user: User, document_id: str) -> str:
    response = await http.get(f"/documents/{document_id}", headers=user.headers)
    return str(response.json()["status"]) if response.status_code == 200 else f"http {response.status_code}"


async def _prepare(http: httpx.AsyncClient, user: User) -> None:
    """The user's document, uploaded and ready, and a thread."""
    user.document_id = await _upload(http, user, small_document(user.marker), f"{user.marker}.md")

    async def ready() -> bool:
        status = await _status(http, user, user.document_id)
        if status == "failed":
            raise RuntimeError(f"document {user.document_id} failed")
        return status == "ready"

    if await _until(ready, within=120) is None:
        raise RuntimeError(f"document {user.document_id} not ready after 120 s")
    user.thread_id = (await http.post("/threads", headers=user.headers, json={})).json()["thread_id"]


async def _consistency(http: httpx.AsyncClient, url: str, users: list[User], check: Checks, *, exact: bool) -> None:
    threads = await asyncio.gather(*(thread_problems(http, user, exact=exact) for user in users))
    wording = "exactly the questions sent, in order, each answered" if exact else "every answered question kept"
    check(f"no lost message ({wording})", [problem for found in threads for problem in found])
    check("no forked thread (each thread's checkpoints form one chain)", chain_problems(url))
    check("no cross-user result (citations, searches)", [f"user {u.id}: {f}" for u in users for f in u.foreign])


# 1. Load.


async def load(http: httpx.AsyncClient, url: str, users: list[User], check: Checks) -> None:
    print(f"1. load: {USERS} users at once, {TURNS} turns each on a thread of their own")
    outcomes: list[Outcome] = []

    async def converse(user: User) -> None:
        for _ in range(TURNS):
            outcomes.append(await ask(http, user, user.next_question()))

    started = time.monotonic()
    await asyncio.gather(*(converse(user) for user in users))
    wall = time.monotonic() - started
    ok = [o for o in outcomes if o.ok]
    failed = len(outcomes) - len(ok)
    streamed = sum(user.stream for user in users) * TURNS
    print(f"  turns: {len(outcomes)} ({streamed} streamed); wall time {wall:.1f} s; {len(ok) / wall:.1f} turns/s")
    print(f"  errors: {failed} ({failed / len(outcomes):.1%}): {kinds(outcomes)}")
    print(f"  turn latency: {_ms([o.seconds for o in ok])}")
    neighbours = [users[(n + 1) % len(users)] for n in range(len(users))]
    await asyncio.gather(*(search_isolation(http, u, other) for u, other in zip(users, neighbours, strict=True)))
    cited = sum(bool(o.values and o.values.get("citations")) for o in ok)
    print(f"  answers with a citation: {cited} of {len(ok)}; searches for own and another's marker: {2 * len(users)}")
    check("no failed turn", [o.kind for o in outcomes if not o.ok])
    await _consistency(http, url, users, check, exact=True)


# 2. Database restart mid-load.


async def _converse_retrying(
    http: httpx.AsyncClient, user: User, outcomes: list[Outcome], busy: asyncio.Event, deadline: float
) -> int:
    """OUTAGE_TURNS successful turns, asking again after each failure; how many it got."""
    done, question = 0, user.next_question()
    while done < OUTAGE_TURNS and time.monotonic() < deadline:
        outcome = await ask(http, user, question)
        outcomes.append(outcome)
        if not outcome.ok:
            await asyncio.sleep(RETRY_SECONDS)
            continue
        done, question = done + 1, user.next_question()
        if sum(o.ok for o in outcomes) >= USERS:
            busy.set()
    return done


async def _restart(db: Database, busy: asyncio.Event) -> tuple[float, float]:
    """Once the users are busy, stop PostgreSQL and start it again; when it stopped and was back."""
    await busy.wait()
    down = time.monotonic()
    await asyncio.to_thread(db.stop)
    await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself
    await asyncio.to_thread(db.start)
    return down, time.monotonic()


async def _sample_readiness(http: httpx.AsyncClient, samples: list[tuple[float, int]], until: asyncio.Event) -> None:
    while not until.is_set():
        try:
            status = (await http.get("/health/ready", timeout=2)).status_code
        except httpx.TransportError:
            status = 0
        samples.append((time.monotonic(), status))
        await asyncio.sleep(0.1)  # a sampling interval


async def database_restart(http: httpx.AsyncClient, db: Database, users: list[User], check: Checks) -> set[str]:
    """Returns the runs it leaves unfinished, for the next phase to tell its own apart."""
    print(f"2. database restart: PostgreSQL down {OUTAGE_SECONDS:g} s while the users ask {OUTAGE_TURNS} more each")
    outcomes: list[Outcome] = []
    samples: list[tuple[float, int]] = []
    busy, finished = asyncio.Event(), asyncio.Event()
    deadline = time.monotonic() + 120
    sampler = asyncio.create_task(_sample_readiness(http, samples, finished))
    restart = asyncio.create_task(_restart(db, busy))
    completed = await asyncio.gather(*(_converse_retrying(http, u, outcomes, busy, deadline) for u in users))
    finished.set()
    await sampler
    down, up = await restart
    _report_outage(outcomes, samples, down, up)
    failed = [o for o in outcomes if not o.ok]
    check(
        "failures are clean (JSON error or SSE error event, no stack trace, no hang)",
        [o.kind for o in failed if not o.clean],
    )
    short = [f"user {u.id}: {n}" for u, n in zip(users, completed, strict=True) if n < OUTAGE_TURNS]
    check(f"every user got {OUTAGE_TURNS} answers, retrying, without a service restart", short)
    await _consistency(http, db.url, users, check, exact=False)
    left = unfinished_runs(db.url)
    check("every run finished (none left pending or running)", [f"thread {t}: run {r}" for t, r in left])
    return {run for _, run in left}


def _report_outage(outcomes: list[Outcome], samples: list[tuple[float, int]], down: float, up: float) -> None:
    failed = [o for o in outcomes if not o.ok]
    during = [o for o in failed if o.ended >= down]
    print(f"  turns: {len(outcomes)}; failed {len(failed)}, {len(during)} of them once the stop began: {kinds(failed)}")
    print(f"  database stopped at t=0, back at t={up - down:.1f} s (pg_ctl stop and start included)")
    after = [o for o in outcomes if o.ok and o.started >= up]
    if after:
        first = min(after, key=lambda o: o.ended)
        asked, answered = first.started - up, first.ended - up
        print(f"  first success once it was back: asked at +{asked:.2f} s, answered at +{answered:.2f} s")
    unready = [t for t, status in samples if status != 200 and t >= down]
    ready = [t for t, status in samples if status == 200 and t >= up]
    if unready and ready:
        print(f"  /health/ready: not ready from t={unready[0] - down:.1f} s, 200 again at +{ready[0] - up:.2f} s")
    slowest = max((o.seconds for o in failed), default=0.0)
    print(
        f"  latency of successful turns: {_ms([o.seconds for o in outcomes if o.ok])}; slowest failure {slowest:.1f} s"
    )


# 3. Service killed mid-run.


async def _kill_mid_run(
    http: httpx.AsyncClient, service: Service, users: list[User]
) -> tuple[float, list[Outcome], int]:
    """A turn on every thread; SIGKILL once half of them have started. When, what the
    clients saw, and how many runs had started."""
    started, half = 0, asyncio.Event()

    def on_start() -> None:
        nonlocal started
        started += 1
        if started >= len(users) // 2:
            half.set()

    turns = [asyncio.create_task(ask(http, u, u.next_question(), stream=True, on_start=on_start)) for u in users]
    await asyncio.wait_for(half.wait(), TURN_TIMEOUT)
    service.kill()
    killed = time.monotonic()
    return killed, list(await asyncio.gather(*turns)), started


async def _run_status(http: httpx.AsyncClient, user: User, run_id: str) -> tuple[str, str | None]:
    response = await http.get(f"/threads/{user.thread_id}/runs/{run_id}", headers=user.headers)
    body = response.json()
    return str(body.get("status", f"http {response.status_code}")), body.get("error")


async def _orphans_left(
    http: httpx.AsyncClient, owners: dict[str, User], orphans: list[tuple[str, str]], killed: float
) -> list[tuple[str, str]]:
    """Poll the orphaned runs until each is `error` with a message; (thread, run) of those never marked."""
    pending = set(orphans)

    async def all_marked() -> bool:
        for thread, run in list(pending):
            status, error = await _run_status(http, owners[thread], run)
            if status == "error" and error:
                pending.discard((thread, run))
        return not pending

    await _until(all_marked, within=ORPHAN_DEADLINE - (time.monotonic() - killed), every=1.0)
    return sorted(pending)


async def _next_run(http: httpx.AsyncClient, user: User, killed: float, refusals: list[Outcome]) -> float | None:
    """Ask until a turn succeeds (409 while the dead run's lease lasts); seconds after the kill."""
    question = user.next_question()
    while time.monotonic() - killed < LEASE_SECONDS + 60:
        outcome = await ask(http, user, question)
        if outcome.ok:
            return time.monotonic() - killed
        refusals.append(outcome)
        await asyncio.sleep(1.0)  # a client's pause before asking again
    return None


async def _ready_after(http: httpx.AsyncClient, owner: User, document_id: str, killed: float) -> float | None:
    async def ready() -> bool:
        return await _status(http, owner, document_id) == "ready"

    return None if await _until(ready, within=180, every=0.5) is None else time.monotonic() - killed


async def service_kill(
    http: httpx.AsyncClient, db: Database, service: Service, users: list[User], known: set[str], check: Checks
) -> None:
    print("3. service killed: SIGKILL with runs in flight and a document processing, then started again")
    owner = users[0]
    large = await _upload(http, owner, large_document(owner.marker, LARGE_SECTIONS), "handbook.md")

    async def processing() -> bool:
        return await _status(http, owner, large) == "processing"

    was_processing = await _until(processing, within=30, every=0.05) is not None
    killed, outcomes, started = await _kill_mid_run(http, service, users)
    orphans = [(thread, run) for thread, run in unfinished_runs(db.url) if run not in known]
    print(
        f"  at the kill: {started} runs had started, {sum(o.ok for o in outcomes)} had answered, {len(orphans)} "
        f"were recorded running; the document was {'processing' if was_processing else 'NOT processing'}"
    )
    print(f"  the clients saw: {kinds(outcomes)}")
    print(f"  started again, ready in {await service.start():.1f} s")
    owners = {user.thread_id: user for user in users}
    refusals: list[Outcome] = []
    states, unmarked, next_runs, document = await asyncio.gather(
        asyncio.gather(*(http.get(f"/threads/{u.thread_id}/state", headers=u.headers) for u in users)),
        _orphans_left(http, owners, orphans, killed),
        asyncio.gather(*(_next_run(http, u, killed, refusals) for u in users)),
        _ready_after(http, owner, large, killed),
    )
    waits = [seconds for seconds in next_runs if seconds is not None]
    print(
        f"  orphaned runs marked error with a message: {len(orphans) - len(unmarked)} of {len(orphans)}"
        f" (polled until {ORPHAN_DEADLINE:g} s after the kill)"
    )
    print(f"  next run on each thread answered {_seconds(waits)} after the kill; refused before: {kinds(refusals)}")
    ended = "(deadline passed)" if document is None else f"{document:.1f} s after the kill"
    print(
        f"  the document being processed ({LARGE_SECTIONS} sections) ended {await _status(http, owner, large)} {ended}"
    )
    check("every thread's state loads", [f"{r.url.path}: {r.status_code}" for r in states if r.status_code != 200])
    check(
        f"orphaned runs marked failed within {ORPHAN_DEADLINE:g} s of the kill",
        [f"run {r}: still running" for _, r in unmarked],
    )
    check(
        "the next run on every thread works",
        [f"user {u.id}" for u, s in zip(users, next_runs, strict=True) if s is None],
    )
    check(
        "the processing document ends ready",
        [] if document else [f"document {large}: {await _status(http, owner, large)}"],
    )
    await _consistency(http, db.url, users, check, exact=False)
    if unmarked:
        await _restart_after_leases(http, service, owners, unmarked)


async def _restart_after_leases(
    http: httpx.AsyncClient, service: Service, owners: dict[str, User], runs: list[tuple[str, str]]
) -> None:
    """Not a check: whether a start once the leases have lapsed marks the runs the first start missed."""
    service.stop()
    await service.start()
    statuses = [(await _run_status(http, owners[thread], run))[0] for thread, run in runs]
    print(f"  (one more restart, the leases long lapsed: {statuses.count('error')} of {len(runs)} then marked error)")


async def main() -> int:
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # platformdirs, in containers
    check = Checks()
    async with AsyncExitStack() as stack:
        db = Database(stack, Path(stack.enter_context(tempfile.TemporaryDirectory())))
        await migrate(db.url, MIGRATIONS)
        LOG.parent.mkdir(parents=True, exist_ok=True)
        log = stack.enter_context(LOG.open("w"))
        # A request cut off by the killed service makes the model print a stack: to the log.
        model = Model(stderr=log)
        stack.callback(model.stop)
        service = Service(db.url, model, log)
        stack.callback(service.stop)
        print(f"soak: docent serve ready in {await service.start():.1f} s; its log in {LOG.relative_to(REPO)}")
        limits = httpx.Limits(max_connections=4 * USERS, max_keepalive_connections=2 * USERS)
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=service.base, timeout=TURN_TIMEOUT, limits=limits)
        )
        ids = _users(db.url, USERS)
        users = [User(id=user_id, headers=_token(user_id), stream=n % 2 == 1) for n, user_id in enumerate(ids)]
        started = time.monotonic()
        await asyncio.gather(*(_prepare(http, user) for user in users))
        print(f"  {USERS} users, each with a document (ready) and a thread: {time.monotonic() - started:.1f} s")
        await load(http, db.url, users, check)
        known = await database_restart(http, db, users, check)
        await service_kill(http, db, service, users, known, check)
    print(f"soak: {'every check passed' if not check.problems else f'{len(check.problems)} problems'}")
    return 1 if check.problems else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
