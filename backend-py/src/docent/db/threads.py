"""Threads gateway: a conversation's owner, title, status and the lease of its running run.

Every function but the lease's bookkeeping (`release_lease`, `renew_lease`: the service's own
login) runs in a user transaction, so RLS limits it to the caller's threads: another user's
thread is indistinguishable from a missing one.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db.models import Thread

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
SortBy = Literal["thread_id", "status", "created_at", "updated_at"]
_SORT_COLUMNS = {
    "thread_id": Thread.id,
    "status": Thread.status,
    "created_at": Thread.created_at,
    "updated_at": Thread.updated_at,
}


async def create_thread(
    session: AsyncSession, *, thread_id: UUID, user_id: UUID, metadata: dict[str, Any]
) -> Thread | None:
    """The new thread, or None when the id is taken (by the caller or anyone else)."""
    statement = (
        insert(Thread)
        .values(id=thread_id, user_id=user_id, metadata=metadata)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(col(Thread.id))
    )
    if (await session.exec(statement)).one_or_none() is None:
        return None
    return await get_thread(session, thread_id=thread_id)


async def get_thread(session: AsyncSession, *, thread_id: UUID, for_update: bool = False) -> Thread | None:
    """The thread (RLS: the caller's only); `for_update` locks its row until the transaction ends."""
    statement = select(Thread).where(col(Thread.id) == thread_id).execution_options(populate_existing=True)
    result = await session.exec(statement.with_for_update() if for_update else statement)
    return result.one_or_none()


async def search_threads(
    session: AsyncSession,
    *,
    metadata: dict[str, Any],
    status: ThreadStatus | None,
    ids: list[UUID] | None,
    limit: int,
    offset: int,
    sort_by: SortBy,
    descending: bool,
) -> list[Thread]:
    column = col(_SORT_COLUMNS[sort_by])
    statement = select(Thread).where(*_matching(metadata, status, ids))
    order = column.desc() if descending else column.asc()
    statement = statement.order_by(order, col(Thread.id)).limit(limit).offset(offset)
    return list((await session.exec(statement)).all())


async def count_threads(
    session: AsyncSession, *, metadata: dict[str, Any], status: ThreadStatus | None, ids: list[UUID] | None
) -> int:
    statement = select(func.count()).select_from(Thread).where(*_matching(metadata, status, ids))
    return (await session.exec(statement)).one()


def _matching(metadata: dict[str, Any], status: ThreadStatus | None, ids: list[UUID] | None) -> list[Any]:
    conditions: list[Any] = []
    if metadata:
        conditions.append(col(Thread.metadata_).contains(metadata))
    if status is not None:
        conditions.append(col(Thread.status) == status)
    if ids is not None:
        conditions.append(col(Thread.id).in_(ids))
    return conditions


async def update_thread(session: AsyncSession, *, thread_id: UUID, metadata: dict[str, Any]) -> Thread | None:
    """Merge `metadata` into the thread's (shallowly, as the Agent Server does)."""
    values = {"updated_at": func.now(), "metadata_": col(Thread.metadata_).op("||")(metadata)}
    statement = update(Thread).where(col(Thread.id) == thread_id).values(values).returning(col(Thread.id))
    if (await session.exec(statement)).one_or_none() is None:
        return None
    return await get_thread(session, thread_id=thread_id)


async def delete_thread(session: AsyncSession, *, thread_id: UUID) -> bool:
    statement = delete(Thread).where(col(Thread.id) == thread_id).returning(col(Thread.id))
    return (await session.exec(statement)).one_or_none() is not None


async def delete_all_threads(session: AsyncSession) -> list[UUID]:
    """Delete the caller's threads (their checkpoints go with them: a trigger); their ids."""
    deleted = await session.exec(delete(Thread).returning(col(Thread.id)))
    return list(deleted.scalars().all())


async def acquire_thread(session: AsyncSession, *, thread_id: UUID, run_id: UUID, lease: timedelta) -> bool:
    """In the caller's transaction: mark their thread busy for `run_id`; False while another
    run holds an unexpired lease (or the thread is not theirs)."""
    seconds = lease.total_seconds()
    statement = select(func.public.acquire_thread_lease(thread_id, run_id, seconds))
    return bool((await session.exec(statement)).one())


@dataclass(frozen=True)
class Lease:
    holder: UUID | None  # the run holding the thread, if it is one of the caller's (RLS)
    seconds_left: float  # until the lease lapses (by the database's clock); 0 if not held


_LEASE = text(
    "select case when t.locked_until > now() then r.id end as holder,"
    " coalesce(greatest(extract(epoch from t.locked_until - now()), 0), 0) as seconds_left"
    " from public.threads t left join public.runs r on r.id = t.lease_run_id where t.id = :thread"
)


async def lease(session: AsyncSession, *, thread_id: UUID) -> Lease | None:
    """Who holds the caller's thread and for how long; None if the thread is gone."""
    row = (await (await session.connection()).execute(_LEASE, {"thread": thread_id})).one_or_none()
    return None if row is None else Lease(holder=row.holder, seconds_left=float(row.seconds_left))


# Renewal and release are the service's bookkeeping: they run on its own login (users may
# not write a thread's status or lease), and name the run explicitly.


async def release_lease(session: AsyncSession, *, thread_id: UUID, run_id: UUID) -> None:
    """Free the thread if `run_id` holds it (runs release through `finish_run`; this is for a
    queued run that took the thread but may not run)."""
    await session.exec(
        update(Thread)
        .where(col(Thread.id) == thread_id, col(Thread.lease_run_id) == run_id)
        .values(status="idle", locked_until=None, lease_run_id=None)
    )


async def renew_lease(session: AsyncSession, *, thread_id: UUID, run_id: UUID, lease: timedelta) -> bool:
    """Extend the run's lease; False when the run no longer holds it."""
    statement = (
        update(Thread)
        .where(col(Thread.id) == thread_id, col(Thread.lease_run_id) == run_id, col(Thread.status) == "busy")
        .values(locked_until=func.now() + lease)
        .returning(col(Thread.id))
    )
    return (await session.exec(statement)).one_or_none() is not None
