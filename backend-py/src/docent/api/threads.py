"""Threads in the LangGraph Agent Server's shapes: create, search, get, update, delete, and
their state and history, read from the checkpointer once the thread's row (under RLS) is found."""

from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Path, Query, Response
from langchain_core.runnables import RunnableConfig

from docent.api.agent_schemas import (
    MAX_CHECKPOINT_ID,
    MAX_METADATA_BYTES,
    HistoryQuery,
    StateAt,
    ThreadCreate,
    ThreadPatch,
    ThreadSearch,
    metadata_too_large,
    state_json,
    thread_json,
)
from docent.api.deps import AgentGraph, Runs, Sessions, UserSession
from docent.api.json_body import StrictJSONRoute
from docent.auth import CurrentPrincipal
from docent.db import runs as runs_db
from docent.db import threads
from docent.db.checkpoints import forget_threads, storage_errors
from docent.db.models import Thread
from docent.db.session import user_transaction
from docent.errors import Conflict, InvalidContent, NotFound
from docent.graph.build import Graph

router = APIRouter(tags=["threads"], route_class=StrictJSONRoute)


def _config(thread_id: UUID, checkpoint_id: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": str(thread_id)}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return RunnableConfig(configurable=configurable)


async def owned_thread(session: UserSession, thread_id: UUID, *, for_update: bool = False) -> Thread:
    thread = await threads.get_thread(session, thread_id=thread_id, for_update=for_update)
    if thread is None:
        raise _not_found(thread_id)
    return thread


def _not_found(thread_id: UUID) -> NotFound:
    return NotFound(f"Thread with ID {thread_id} not found", code="thread_not_found")


async def _values(graph: Graph, thread_id: UUID) -> dict[str, Any] | None:
    with storage_errors():
        snapshot = await graph.aget_state(_config(thread_id))
    return state_json(snapshot)["values"] if snapshot.values else None


@router.post("/threads")
async def create_thread(body: ThreadCreate, principal: CurrentPrincipal, session: UserSession) -> dict[str, Any]:
    thread_id = body.thread_id or uuid4()
    thread = await threads.create_thread(
        session, thread_id=thread_id, user_id=principal.user_id, metadata=body.metadata
    )
    if thread is not None:  # a chosen id used before has no checkpoints left: they went with its row
        return thread_json(thread)
    existing = await threads.get_thread(session, thread_id=thread_id)
    if existing is not None and body.if_exists == "do_nothing":
        return thread_json(existing)
    raise Conflict(f"Thread with ID {thread_id} already exists", code="thread_exists")


@router.post("/threads/search")
async def search_threads(body: ThreadSearch, session: UserSession, response: Response) -> list[dict[str, Any]]:
    found = await threads.search_threads(
        session,
        metadata=body.metadata,
        status=body.status,
        ids=body.ids,
        limit=body.limit,
        offset=body.offset,
        sort_by="updated_at" if body.sort_by == "state_updated_at" else body.sort_by,
        descending=body.sort_order == "desc",
    )
    response.headers["X-Pagination-Total"] = str(
        await threads.count_threads(session, metadata=body.metadata, status=body.status, ids=body.ids)
    )
    return [thread_json(thread) for thread in found]


@router.post("/threads/count")
async def count_threads(body: ThreadSearch, session: UserSession) -> int:
    return await threads.count_threads(session, metadata=body.metadata, status=body.status, ids=body.ids)


@router.get("/threads/{thread_id}")
async def get_thread(thread_id: UUID, session: UserSession, graph: AgentGraph) -> dict[str, Any]:
    thread = await owned_thread(session, thread_id)
    return thread_json(thread, values=await _values(graph, thread_id))


@router.patch("/threads/{thread_id}")
async def update_thread(thread_id: UUID, body: ThreadPatch, session: UserSession) -> dict[str, Any]:
    thread = await threads.update_thread(session, thread_id=thread_id, metadata=body.metadata)
    if thread is None:
        raise _not_found(thread_id)
    if metadata_too_large(thread.metadata_):  # the transaction rolls the merge back
        raise InvalidContent(
            f"The thread's metadata with these keys merged in would be over {MAX_METADATA_BYTES} bytes as JSON.",
            code="metadata_too_large",
        )
    return thread_json(thread)


@router.delete("/threads/{thread_id}", status_code=204)
async def delete_thread(
    thread_id: UUID, principal: CurrentPrincipal, sessions: Sessions, graph: AgentGraph, runs: Runs
) -> Response:
    await runs.cancel_runs_to_delete(principal.user_id, thread_id=thread_id)  # before taking a connection
    async with user_transaction(sessions, principal) as session:
        await runs_db.lock_unfinished_runs(session, thread_id=thread_id)
        thread = await owned_thread(session, thread_id, for_update=True)  # no run starts on it now
        if thread_json(thread)["status"] == "busy":  # one started just before, or another replica's
            raise Conflict("The thread has a run in flight; cancel it first.", code="thread_busy")
        await threads.delete_thread(session, thread_id=thread_id)  # its checkpoints with it (a trigger)
    forget_threads(graph, [thread_id])
    return Response(status_code=204)


@router.get("/threads/{thread_id}/state")
async def get_state(thread_id: UUID, session: UserSession, graph: AgentGraph) -> dict[str, Any]:
    await owned_thread(session, thread_id)
    with storage_errors():
        return state_json(await graph.aget_state(_config(thread_id)))


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_state_at(
    thread_id: UUID,
    checkpoint_id: Annotated[str, Path(max_length=MAX_CHECKPOINT_ID)],
    session: UserSession,
    graph: AgentGraph,
) -> dict[str, Any]:
    await owned_thread(session, thread_id)
    return await _state_at(graph, thread_id, checkpoint_id)


@router.post("/threads/{thread_id}/state/checkpoint")
async def post_state_at(thread_id: UUID, body: StateAt, session: UserSession, graph: AgentGraph) -> dict[str, Any]:
    await owned_thread(session, thread_id)
    return await _state_at(graph, thread_id, body.checkpoint["checkpoint_id"])


async def _state_at(graph: Graph, thread_id: UUID, checkpoint_id: str) -> dict[str, Any]:
    with storage_errors():
        snapshot = await graph.aget_state(_config(thread_id, checkpoint_id))
    if not snapshot.values and snapshot.created_at is None:
        raise NotFound(f"Checkpoint {checkpoint_id} not found", code="checkpoint_not_found")
    return state_json(snapshot)


async def _history(graph: Graph, thread_id: UUID, query: HistoryQuery) -> list[dict[str, Any]]:
    before = query.before_id()
    snapshots = graph.aget_state_history(
        _config(thread_id),
        limit=query.limit,
        before=_config(thread_id, before) if before else None,
        filter=query.metadata,
    )
    with storage_errors():
        return [state_json(snapshot) async for snapshot in snapshots]


@router.post("/threads/{thread_id}/history")
async def post_history(
    thread_id: UUID, body: HistoryQuery, session: UserSession, graph: AgentGraph
) -> list[dict[str, Any]]:
    await owned_thread(session, thread_id)
    return await _history(graph, thread_id, body)


@router.get("/threads/{thread_id}/history")
async def get_history(
    thread_id: UUID,
    session: UserSession,
    graph: AgentGraph,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    before: str | None = None,
) -> list[dict[str, Any]]:
    await owned_thread(session, thread_id)
    return await _history(graph, thread_id, HistoryQuery(limit=limit, before=before))
