"""Runs in the LangGraph Agent Server's shapes: stream, wait, create in the background,
list, get, cancel, join, and feedback on a run."""

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, cast
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.api import sse
from docent.api.agent_schemas import MAX_OFFSET, FeedbackCreate, RunCreate, run_json
from docent.api.deps import AgentGraph, AppSettings, AppTracing, Runs, Sessions, UserSession, after_commit
from docent.api.json_body import StrictJSONRoute
from docent.api.threads import owned_thread
from docent.auth import CurrentPrincipal
from docent.db import runs as runs_db
from docent.db import threads as threads_db
from docent.db.checkpoints import storage_errors
from docent.db.models import Run, RunFeedback
from docent.db.session import acting_as, user_transaction
from docent.errors import InvalidContent, NotFound
from docent.graph import GRAPH_ID
from docent.graph.build import Graph
from docent.runs import LiveRun, RunSpec
from docent.runs.live import Event
from docent.runs.manager import DEFAULT_DURABILITY, RunManager, Strategy
from docent.settings import Settings

logger = logging.getLogger(__name__)
router = APIRouter(tags=["runs"], route_class=StrictJSONRoute)


def _spec(thread_id: UUID, body: RunCreate, settings: Settings, *, streamed: bool) -> RunSpec:
    if body.assistant_id != GRAPH_ID:
        raise NotFound("Thread or assistant not found.", code="assistant_not_found")
    question = body.input.messages[0].text()
    if not question.strip():
        raise InvalidContent("The message is empty.", code="empty_message")
    if len(question) > settings.max_message_chars:
        raise InvalidContent(
            f"The message has {len(question)} characters; at most {settings.max_message_chars} are accepted.",
            code="message_too_long",
        )
    return RunSpec(
        thread_id=thread_id,
        question=question,
        stream_modes=body.stream_modes() if streamed else (),  # wait and create need only the end
        strategy=cast(Strategy, body.multitask_strategy),  # the schema refuses rollback
        metadata=body.metadata,
        durability=body.durability or DEFAULT_DURABILITY,
    )


async def _start(
    *,
    thread_id: UUID,
    body: RunCreate,
    principal: CurrentPrincipal,
    session: UserSession,
    runs: Runs,
    settings: Settings,
    streamed: bool = False,
) -> tuple[dict[str, Any], LiveRun, asyncio.Queue[Event | None]]:
    spec = _spec(thread_id, body, settings, streamed=streamed)
    if body.if_not_exists == "create" and await threads_db.get_thread(session, thread_id=thread_id) is None:
        await threads_db.create_thread(session, thread_id=thread_id, user_id=principal.user_id, metadata={})
    run, live = await runs.admit(session, user_id=principal.user_id, spec=spec, run_id=uuid4())
    queue = live.listen()
    after_commit(session, lambda: runs.launch(live, spec))
    return run_json(run), live, queue


def _location(thread_id: UUID, run_id: UUID | str) -> dict[str, str]:
    return {"Content-Location": f"/threads/{thread_id}/runs/{run_id}"}


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(
    *,
    thread_id: UUID,
    body: RunCreate,
    principal: CurrentPrincipal,
    session: UserSession,
    runs: Runs,
    settings: AppSettings,
) -> StreamingResponse:
    run, live, queue = await _start(
        thread_id=thread_id,
        body=body,
        principal=principal,
        session=session,
        runs=runs,
        settings=settings,
        streamed=True,
    )
    return StreamingResponse(
        sse.event_stream(live, queue, cancel_on_disconnect=body.on_disconnect == "cancel"),
        media_type="text/event-stream",
        headers=sse.SSE_HEADERS | _location(thread_id, run["run_id"]),
    )


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(
    *,
    thread_id: UUID,
    body: RunCreate,
    principal: CurrentPrincipal,
    session: UserSession,
    runs: Runs,
    settings: AppSettings,
) -> StreamingResponse:
    run, live, queue = await _start(
        thread_id=thread_id, body=body, principal=principal, session=session, runs=runs, settings=settings
    )
    # `Location`: where the SDK asks again for the outcome if the body is cut off.
    location = _location(thread_id, run["run_id"]) | {"Location": f"/threads/{thread_id}/runs/{run['run_id']}/join"}
    return StreamingResponse(
        sse.final_json(live, queue, cancel_on_disconnect=body.on_disconnect == "cancel"),
        media_type="application/json",
        headers=location,
    )


@router.post("/threads/{thread_id}/runs")
async def create_run(
    *,
    thread_id: UUID,
    body: RunCreate,
    principal: CurrentPrincipal,
    session: UserSession,
    runs: Runs,
    settings: AppSettings,
    response: Response,
) -> dict[str, Any]:
    run, live, queue = await _start(
        thread_id=thread_id, body=body, principal=principal, session=session, runs=runs, settings=settings
    )
    live.unlisten(queue)
    response.headers.update(_location(thread_id, run["run_id"]))
    return run


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    *,
    thread_id: UUID,
    session: UserSession,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    status: runs_db.RunStatus | None = None,
) -> list[dict[str, Any]]:
    await owned_thread(session, thread_id)
    found = await runs_db.list_runs(session, thread_id=thread_id, status=status, limit=limit, offset=offset)
    return [run_json(run) for run in found]


async def _owned_run(session: UserSession, thread_id: UUID, run_id: UUID) -> Run:
    await owned_thread(session, thread_id)
    run = await runs_db.get_run(session, thread_id=thread_id, run_id=run_id)
    if run is None:
        raise NotFound("Run not found", code="run_not_found")
    return run


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: UUID, run_id: UUID, session: UserSession) -> dict[str, Any]:
    return run_json(await _owned_run(session, thread_id, run_id))


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", status_code=202)
async def cancel_run(
    *,
    thread_id: UUID,
    run_id: UUID,
    principal: CurrentPrincipal,
    session: UserSession,
    runs: Runs,
    graph: AgentGraph,
    sessions: Sessions,
    wait: Annotated[bool, Query()] = False,
    action: Annotated[str, Query(pattern="^(interrupt|rollback)$")] = "interrupt",
) -> Response:
    await owned_thread(session, thread_id)
    run = await runs_db.get_run(session, thread_id=thread_id, run_id=run_id)
    if run is None or run.status in runs_db.FINISHED:
        raise NotFound("No matching runs to cancel: the run does not exist or has finished.", code="run_not_found")
    if action == "rollback":
        raise InvalidContent("action 'rollback' is not supported; use interrupt", code="unsupported")
    # Another replica's run is signalled as this transaction commits.
    live = await runs.cancel(session, run_id, user_id=principal.user_id)
    if not wait:
        return Response(status_code=202)
    # Waited for in the body, after the request's transaction has committed: the wait holds
    # no pooled connection, which the run needs to record its end.
    final = _final(
        runs, graph, sessions, live=live, user_id=principal.user_id, thread_id=thread_id, run_id=run_id, cancelling=True
    )
    return StreamingResponse(final, media_type="application/json")


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(
    *,
    thread_id: UUID,
    run_id: UUID,
    principal: CurrentPrincipal,
    session: UserSession,
    runs: Runs,
    graph: AgentGraph,
    sessions: Sessions,
) -> Response:
    run = await _owned_run(session, thread_id, run_id)
    live = runs.live(run_id)
    if live is None and run.status in runs_db.FINISHED:
        return Response(await _ended(graph, run), media_type="application/json")
    return StreamingResponse(
        _final(runs, graph, sessions, live=live, user_id=principal.user_id, thread_id=thread_id, run_id=run_id),
        media_type="application/json",
    )


async def _final(
    runs: RunManager,
    graph: Graph,
    sessions: async_sessionmaker[AsyncSession],
    *,
    live: LiveRun | None,
    user_id: UUID,
    thread_id: UUID,
    run_id: UUID,
    cancelling: bool = False,
) -> AsyncIterator[bytes]:
    """Newlines while the run works (JSON ignores them), then its final values or `__error__`:
    from the run itself in this process, else from its row and thread once it has ended."""
    if live is not None:
        async for part in sse.final_json(live, live.listen()):
            yield part
        return
    try:
        async for _ in runs.until_finished(user_id, run_id, cancelling=cancelling):
            yield b"\n"
        async with user_transaction(sessions, acting_as(user_id)) as session:
            run = await runs_db.get_run(session, thread_id=thread_id, run_id=run_id)
        ended = _error("run_not_found", "The run's thread was deleted.") if run is None else await _ended(graph, run)
    except Exception:  # the body has begun (status 200): the failure must be said in it
        logger.warning("run_outcome_unread", extra={"run_id": str(run_id)}, exc_info=True)
        ended = _error("database_unavailable", "The run's outcome could not be read; try again.")
    yield ended


def _error(kind: str, message: str) -> bytes:
    return sse.dumps({"__error__": {"error": kind, "message": message}}).encode()


async def _ended(graph: Graph, run: Run) -> bytes:
    """An ended run's outcome: its error, or its thread's values."""
    if run.error:  # named as the run's own process named it (the status, for runs recorded before kinds)
        return _error(run.error_kind or run.status, run.error)
    with storage_errors():
        snapshot = await graph.aget_state({"configurable": {"thread_id": str(run.thread_id)}})
    return sse.dumps(snapshot.values).encode()


@router.post("/threads/{thread_id}/runs/{run_id}/feedback", status_code=201)
async def add_feedback(
    *,
    thread_id: UUID,
    run_id: UUID,
    body: FeedbackCreate,
    principal: CurrentPrincipal,
    session: UserSession,
    tracing: AppTracing,
) -> dict[str, Any]:
    await _owned_run(session, thread_id, run_id)
    feedback = await runs_db.add_feedback(
        session,
        feedback=RunFeedback(
            run_id=run_id, user_id=principal.user_id, key=body.key, score=body.score, comment=body.comment
        ),
    )
    sent = tracing is not None and await tracing.send_feedback(
        run_id=run_id, key=body.key, score=body.score, comment=body.comment
    )
    return {
        "id": str(feedback.id),
        "run_id": str(run_id),
        "key": feedback.key,
        "score": feedback.score,
        "comment": feedback.comment,
        "created_at": feedback.created_at.isoformat() if feedback.created_at else None,
        "sent_to_langsmith": sent,
    }
