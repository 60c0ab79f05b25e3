"""The soak's client side: users with a document and a thread of their own, turns and what
became of them, and the consistency checks run on what the service kept."""

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

TURN_TIMEOUT = 45.0  # a turn that takes longer counts as a hang
_STACK_TRACES = ("Traceback (most recent call last)", 'File "/')

# For each thread, anything that keeps its checkpoints from being one chain: two checkpoints
# with the same parent (a fork), other than one root, or a parent that does not exist.
_CHAIN_PROBLEMS = """
select thread_id, 'fork: ' || count(*) || ' checkpoints share parent ' || parent_checkpoint_id
from langgraph.checkpoints where checkpoint_ns = '' and parent_checkpoint_id is not null
group by thread_id, parent_checkpoint_id having count(*) > 1
union all
select thread_id, count(*) || ' root checkpoints'
from langgraph.checkpoints where checkpoint_ns = '' and parent_checkpoint_id is null
group by thread_id having count(*) <> 1
union all
select c.thread_id, 'missing parent ' || c.parent_checkpoint_id
from langgraph.checkpoints c where c.checkpoint_ns = '' and c.parent_checkpoint_id is not null
and not exists (select 1 from langgraph.checkpoints p where p.thread_id = c.thread_id
                and p.checkpoint_ns = '' and p.checkpoint_id = c.parent_checkpoint_id)
"""


def marker_word() -> str:
    """Ten letters no other document contains (hex digits spelt as letters a–p)."""
    return "".join(chr(ord("a") + int(digit, 16)) for digit in uuid.uuid4().hex[:10])


def small_document(marker: str) -> bytes:
    return (
        f"# Notes on {marker}\n\n## What {marker} is\n\n"
        f"{marker} is the codename of a small internal project. The {marker} team keeps its "
        f"notes in this file.\n\n## How {marker} is run\n\n"
        f"Every release of {marker} is reviewed twice, then shipped on a Tuesday.\n"
    ).encode()


def large_document(marker: str, sections: int) -> bytes:
    """About one 900-character chunk per section: long enough to stay `processing` a while."""
    words = ["archive", "ledger", "harbour", "signal", "meadow", "copper", "lantern", "orbit", "quarry", "vessel"]
    parts = [f"# The {marker} handbook\n"]
    for n in range(sections):
        sentence = " ".join(words[(n + i) % len(words)] for i in range(12))
        parts.append(f"## Part {n} of {marker}\n\n" + " ".join(f"{sentence} ({n}.{i})." for i in range(10)) + "\n")
    return "\n".join(parts).encode()


@dataclass
class Outcome:
    kind: str  # "ok", or what went wrong: "500 internal", "run error: internal_error", ...
    started: float
    ended: float = 0.0
    values: dict[str, Any] | None = None
    run_id: str | None = None
    clean: bool = True  # a failure said in JSON (or an SSE error event), with no stack trace

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class User:
    id: uuid.UUID
    headers: dict[str, str]
    stream: bool  # asks through runs/stream, else runs/wait
    marker: str = field(default_factory=marker_word)
    document_id: str = ""
    thread_id: str = ""
    asked: int = 0
    sent: list[str] = field(default_factory=list)  # every question sent, retries included
    answered: list[str] = field(default_factory=list)  # questions that got a success answer, in order
    foreign: list[str] = field(default_factory=list)  # what this user saw of another user's data

    def next_question(self) -> str:
        self.asked += 1
        return f"Question {self.asked}: what do the notes say about {self.marker}?"

    def record(self, question: str, outcome: Outcome) -> None:
        if not outcome.ok or outcome.values is None:
            return
        self.answered.append(question)
        for citation in outcome.values.get("citations", []):
            if citation.get("document_id") != self.document_id:
                self.foreign.append(f"citation of document {citation.get('document_id')}")


def _clean(text: str) -> bool:
    return not any(marker in text for marker in _STACK_TRACES)


def _refusal(status: int, body: bytes) -> tuple[str, bool]:
    """The kind of a non-200 answer, and whether it was said cleanly."""
    try:
        payload = json.loads(body)
    except ValueError:
        return f"{status} (not JSON)", False
    code = payload.get("error") if isinstance(payload, dict) else None
    return f"{status} {code}", isinstance(code, str) and _clean(body.decode())


def _ask(question: str) -> dict[str, Any]:
    return {"assistant_id": "docent", "input": {"messages": [{"role": "user", "content": question}]}}


def _run_id(response: httpx.Response) -> str | None:
    location = response.headers.get("content-location")
    return location.rsplit("/", 1)[-1] if location else None


async def _waited(http: httpx.AsyncClient, user: User, question: str, outcome: Outcome) -> None:
    response = await http.post(f"/threads/{user.thread_id}/runs/wait", headers=user.headers, json=_ask(question))
    outcome.run_id = _run_id(response)
    if response.status_code != 200:
        outcome.kind, outcome.clean = _refusal(response.status_code, response.content)
        return
    body = response.json()
    error = body.get("__error__")
    if error is None:
        outcome.kind, outcome.values = "ok", body
        return
    outcome.kind = f"run error: {error.get('error')}"
    outcome.clean = bool(error.get("message")) and _clean(response.text)


async def _streamed(
    http: httpx.AsyncClient, user: User, question: str, outcome: Outcome, on_start: Callable[[], None] | None
) -> None:
    body = _ask(question) | {"stream_mode": "values"}
    async with http.stream("POST", f"/threads/{user.thread_id}/runs/stream", headers=user.headers, json=body) as r:
        outcome.run_id = _run_id(r)
        if r.status_code != 200:
            outcome.kind, outcome.clean = _refusal(r.status_code, await r.aread())
            return
        event = ""
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
                if event == "metadata" and on_start is not None:
                    on_start()
                elif event == "values":
                    outcome.values = data
                elif event == "error":
                    outcome.kind = f"stream error: {data.get('error')}"
                    outcome.clean = bool(data.get("message")) and _clean(line)
                    return
    outcome.kind = "ok" if outcome.values is not None else "stream ended without values"
    outcome.clean = outcome.ok


async def ask(
    http: httpx.AsyncClient,
    user: User,
    question: str,
    *,
    stream: bool | None = None,
    on_start: Callable[[], None] | None = None,
) -> Outcome:
    """One turn, through runs/stream or runs/wait; never raises for what the service did."""
    user.sent.append(question)
    outcome = Outcome("pending", started=time.monotonic())
    try:
        async with asyncio.timeout(TURN_TIMEOUT):
            if stream or (stream is None and user.stream):
                await _streamed(http, user, question, outcome, on_start)
            else:
                await _waited(http, user, question, outcome)
    except (TimeoutError, httpx.TimeoutException):
        outcome.kind, outcome.clean = "client timeout", False
    except httpx.TransportError as error:
        outcome.kind, outcome.clean = f"connection lost ({type(error).__name__})", False
    except ValueError:  # a body that is not the JSON it should be
        outcome.kind, outcome.clean = "unreadable body", False
    outcome.ended = time.monotonic()
    user.record(question, outcome)
    return outcome


def kinds(outcomes: list[Outcome]) -> str:
    counted = Counter(o.kind for o in outcomes if not o.ok)
    return ", ".join(f"{kind} ×{n}" for kind, n in counted.most_common()) or "none"


def _segments(messages: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """Each question in the thread, and whether an answer (no tool call, some text) ends its turn."""
    turns: list[tuple[str, bool]] = []
    for message in messages:
        if message["type"] == "human":
            turns.append((message["content"], False))
        elif turns and message["type"] == "ai":
            answered = bool(message.get("content")) and not message.get("tool_calls")
            turns[-1] = (turns[-1][0], answered)
    return turns


def _subsequence(wanted: list[str], found: list[str]) -> bool:
    remaining = iter(found)
    return all(any(item == candidate for candidate in remaining) for item in wanted)


async def thread_problems(http: httpx.AsyncClient, user: User, *, exact: bool) -> list[str]:
    """What is wrong with the user's thread: with `exact`, every question sent must be there
    once, in order, answered; otherwise every answered question must be there, in order and
    answered, and nothing that was not sent."""
    response = await http.get(f"/threads/{user.thread_id}/state", headers=user.headers)
    if response.status_code != 200:
        return [f"thread {user.thread_id}: state did not load ({response.status_code})"]
    turns = _segments(response.json()["values"].get("messages", []))
    questions = [question for question, _ in turns]
    problems = []
    if exact and turns != [(question, True) for question in user.sent]:
        problems.append(f"thread {user.thread_id}: {len(turns)} questions kept of {len(user.sent)} sent, or unanswered")
    if not _subsequence(user.answered, [question for question, answered in turns if answered]):
        problems.append(f"thread {user.thread_id}: a question answered with success is missing or out of order")
    if not set(questions) <= set(user.sent):
        problems.append(f"thread {user.thread_id}: holds a question that was never sent")
    if not _subsequence(questions, user.sent):
        problems.append(f"thread {user.thread_id}: questions out of order")
    return problems


def chain_problems(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [f"thread {thread}: {problem}" for thread, problem in conn.execute(_CHAIN_PROBLEMS).fetchall()]


def unfinished_runs(url: str) -> list[tuple[str, str]]:
    """(thread id, run id) of every run still pending or running."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("select thread_id, id from public.runs where status in ('pending', 'running')")
        return [(str(thread), str(run)) for thread, run in rows.fetchall()]


async def search_isolation(http: httpx.AsyncClient, user: User, neighbour: User) -> None:
    """Search for the user's own marker (must find their document) and for the neighbour's
    (must find nothing of the neighbour's); record anything foreign."""
    for query, own in ((user.marker, True), (neighbour.marker, False)):
        response = await http.post("/search", headers=user.headers, json={"query": query, "k": 5})
        results = response.json().get("results", []) if response.status_code == 200 else []
        if response.status_code != 200 or (own and not results):
            user.foreign.append(
                f"search for {'own' if own else 'neighbour'} marker: {response.status_code}, {len(results)} results"
            )
        user.foreign += [
            f"search result from document {r['document_id']}" for r in results if r["document_id"] != user.document_id
        ]
