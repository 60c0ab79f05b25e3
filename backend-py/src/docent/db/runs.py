"""Runs gateway: each agent run on a thread, its outcome and tokens; feedback; daily usage."""

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, cast
from uuid import UUID

import psycopg
from sqlalchemy import and_, exists, func, or_, text
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db.models import Run, RunFeedback, RunStart, Thread, UsageDaily
from docent.db.threads import ThreadStatus

RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted"]
FINISHED: frozenset[str] = frozenset({"success", "error", "timeout", "interrupted"})
UNFINISHED = ("pending", "running")


Admission = Literal["admitted", "not_found", "busy"]
_ADMIT = text(
    "select outcome, created_at from public.admit_run(:thread, :run, :assistant, :strategy,"
    " cast(:metadata as jsonb), :title, :lease_seconds, :queued)"
)
# Signals about runs, for the other replicas (`docent.runs.signals`): "cancel:<run id>"
# asks the run's process to cancel it, "delete:<run id>" to cancel it because its thread is
# being deleted; "finished:<run id>" says it has ended. NOTIFY is sent as the transaction
# commits.
SIGNALS_CHANNEL = "docent_runs"
# Under the caller's RLS, only a run of theirs can be cancelled. The request is also kept in
# the run's row, for a holder that was not listening when it was sent.
_CANCEL = text(
    "with requested as (update public.runs r set cancel_requested_at = now()"
    " where r.id = :run and r.status in ('pending', 'running') returning r.id)"
    " select pg_notify(:channel, :signal || ':' || cast(id as text)) from requested"
)
_CANCELS_REQUESTED = "select id from public.runs where id = any(%s) and cancel_requested_at is not null"
_ANNOUNCE_ENDS = text("select pg_notify(:channel, 'finished:' || run) from unnest(cast(:runs as text[])) as run")
# The end is announced in the same round trip.
_FINISH = text(
    "select public.finish_run(:run, :status, :error_kind, :error, :input_tokens, :output_tokens, :day,"
    " :thread_status),"
    " pg_notify(:channel, 'finished:' || cast(:run as text))"
)


async def admit_run(session: AsyncSession, *, run: Run, title: str, lease: timedelta, queued: bool) -> Admission:
    """In the caller's transaction, one statement: check that `run`'s thread is theirs, take
    it for the run (unless `queued`: it waits for a run of this process to end), name it
    `title` if it has no name yet, and record `run` (its `created_at` is filled in). Nothing
    is written unless the run is admitted."""
    parameters = {
        "thread": run.thread_id,
        "run": run.id,
        "assistant": run.assistant_id,
        "strategy": run.multitask_strategy,
        "metadata": json.dumps(run.metadata_),
        "title": title,
        "lease_seconds": lease.total_seconds(),
        "queued": queued,
    }
    outcome, created_at = (await (await session.connection()).execute(_ADMIT, parameters)).one()
    run.created_at = run.updated_at = created_at
    return cast(Admission, outcome)


async def get_run(session: AsyncSession, *, thread_id: UUID, run_id: UUID) -> Run | None:
    statement = (
        select(Run)
        .where(col(Run.id) == run_id, col(Run.thread_id) == thread_id)
        .execution_options(populate_existing=True)
    )
    return (await session.exec(statement)).one_or_none()


async def list_runs(
    session: AsyncSession, *, thread_id: UUID, status: RunStatus | None, limit: int, offset: int
) -> list[Run]:
    statement = select(Run).where(col(Run.thread_id) == thread_id)
    if status is not None:
        statement = statement.where(col(Run.status) == status)
    statement = statement.order_by(col(Run.created_at).desc(), col(Run.id)).limit(limit).offset(offset)
    return list((await session.exec(statement)).all())


async def finish_run(
    session: AsyncSession,
    *,
    run_id: UUID,
    status: RunStatus,
    error_kind: str | None,
    error: str | None,
    input_tokens: int,
    output_tokens: int,
    release: ThreadStatus | None,
) -> bool:
    """Record the run's end, add its tokens to its owner's day and, with `release`, free its
    thread with that status (only if the run still holds it), in one statement, which also
    announces the end to the other replicas. False, and
    nothing written, when the end was recorded already (by an earlier attempt whose commit
    went through, or by the sweep of orphaned runs), so it is never counted twice."""
    parameters = {
        "run": run_id,
        "status": status,
        "error_kind": error_kind,
        "error": error,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "day": utc_today(),
        "thread_status": release,
        "channel": SIGNALS_CHANNEL,
    }
    return bool((await (await session.connection()).execute(_FINISH, parameters)).scalar_one())


async def request_cancel(session: AsyncSession, *, run_id: UUID, thread_deleted: bool = False) -> None:
    """Ask the replica holding the caller's unfinished run `run_id` to cancel it (saying, with
    `thread_deleted`, that its thread is being deleted): a notification sent as `session`'s
    transaction commits, and a flag in the run's row (`cancels_requested`; the flag keeps no
    reason)."""
    signal = "delete" if thread_deleted else "cancel"
    await (await session.connection()).execute(_CANCEL, {"channel": SIGNALS_CHANNEL, "run": run_id, "signal": signal})


async def cancels_requested(conn: psycopg.AsyncConnection[Any], run_ids: Sequence[UUID]) -> list[UUID]:
    """Which of `run_ids` a cancel was sent to, on the service's own connection."""
    rows = await (await conn.execute(_CANCELS_REQUESTED, (list(run_ids),))).fetchall()
    return [row[0] for row in rows]


async def run_status(session: AsyncSession, *, run_id: UUID) -> RunStatus | None:
    """The caller's run's status (RLS), or None if there is no such run."""
    statement = select(col(Run.status)).where(col(Run.id) == run_id)
    return cast(RunStatus | None, (await session.exec(statement)).one_or_none())


async def held_run_ids(session: AsyncSession, *, thread_id: UUID | None = None) -> list[UUID]:
    """The caller's unfinished runs (RLS), on one thread or all, whose thread's lease is held:
    runs some process is executing or queueing (a dead process's lapse)."""
    statement = (
        select(col(Run.id))
        .join(Thread, col(Thread.id) == col(Run.thread_id))
        .where(col(Run.status).in_(UNFINISHED), col(Thread.locked_until) > func.now())
    )
    if thread_id is not None:
        statement = statement.where(col(Run.thread_id) == thread_id)
    return list((await session.exec(statement)).all())


async def lock_unfinished_runs(session: AsyncSession, *, thread_id: UUID | None = None) -> None:
    """Lock the caller's unfinished runs (RLS), on one thread or all, until the transaction
    ends. Taken before their threads are locked to be deleted: in `finish_run`'s order (run,
    then thread), so that a run ending meanwhile waits rather than deadlocks."""
    statement = select(col(Run.id)).where(col(Run.status).in_(UNFINISHED))
    if thread_id is not None:
        statement = statement.where(col(Run.thread_id) == thread_id)
    await session.exec(statement.order_by(col(Run.id)).with_for_update())  # in one order: no deadlock among lockers


async def start_queued_run(session: AsyncSession, *, run_id: UUID) -> bool:
    """Mark a queued run running; False if it is no longer pending (a sweep failed it)."""
    statement = (
        update(Run)
        .where(col(Run.id) == run_id, col(Run.status) == "pending")
        .values(status="running", updated_at=func.now())
        .returning(col(Run.id))
    )
    return (await session.exec(statement)).one_or_none() is not None


async def touch_pending_runs(session: AsyncSession, *, run_ids: Sequence[UUID]) -> None:
    """Show the other replicas' sweeps that these queued runs' process is alive (every sweep)."""
    if run_ids:
        await session.exec(
            update(Run)
            .where(col(Run.id).in_(list(run_ids)), col(Run.status) == "pending")
            .values(updated_at=func.now())
        )


async def start_run_slot(session: AsyncSession, *, user_id: UUID, window: timedelta, limit: int) -> datetime | None:
    """Take one of the caller's `limit` run slots per `window`; when all are taken, the time
    the oldest was taken (it frees first) and nothing is recorded.

    Admissions of one user are serialised by a transaction-level advisory lock, so two
    concurrent requests cannot both take the last slot."""
    await session.exec(select(func.pg_advisory_xact_lock(func.hashtextextended(str(user_id), 0))))
    recent = (
        select(col(RunStart.started_at))
        .where(col(RunStart.user_id) == user_id, col(RunStart.started_at) > func.now() - window)
        .order_by(col(RunStart.started_at).desc())
        .limit(limit)
        .subquery()
    )
    oldest, count = (await session.exec(select(func.min(recent.c.started_at), func.count()))).one()
    if count >= limit:
        return oldest  # type: ignore[no-any-return]
    session.add(RunStart(user_id=user_id))
    await session.flush()
    return None


async def prune_run_starts(session: AsyncSession, *, older_than: timedelta) -> None:
    await session.exec(delete(RunStart).where(col(RunStart.started_at) < func.now() - older_than))


async def tokens_today(session: AsyncSession, *, today: date) -> int:
    """The caller's model tokens (input and output) today."""
    statement = select(func.coalesce(func.sum(UsageDaily.input_tokens + UsageDaily.output_tokens), 0)).where(
        col(UsageDaily.day) == today
    )
    return int((await session.exec(statement)).one())


async def usage_summary(session: AsyncSession, *, today: date) -> dict[str, Any]:
    """The caller's tokens and runs today and in all, from their daily rows."""
    totals = select(
        func.coalesce(func.sum(UsageDaily.input_tokens), 0),
        func.coalesce(func.sum(UsageDaily.output_tokens), 0),
        func.coalesce(func.sum(UsageDaily.runs), 0),
    )
    today_row = (await session.exec(totals.where(col(UsageDaily.day) == today))).one()
    total_row = (await session.exec(totals)).one()
    keys = ("input_tokens", "output_tokens", "runs")
    return {
        "today": dict(zip(keys, map(int, today_row), strict=True)),
        "total": dict(zip(keys, map(int, total_row), strict=True)),
    }


async def add_feedback(session: AsyncSession, *, feedback: RunFeedback) -> RunFeedback:
    session.add(feedback)
    await session.flush()
    await session.refresh(feedback)
    return feedback


ORPHANED_KIND = "run_orphaned"


async def fail_orphaned_runs(
    session: AsyncSession, *, message: str, lease: timedelta, alive: Sequence[UUID] = ()
) -> int:
    """Mark failed every unfinished run, but those `alive` in the calling process, that no
    process will finish: its thread's lease has lapsed (or was released more than a lease
    ago and never taken again), or, for a running run, which always holds its thread's
    lease, a later run has taken the thread over. Run by the service's own login, across
    users.

    The lapsed leases are locked first: a renewal that comes meanwhile waits for this
    transaction, then finds its lease gone (and its run stops), rather than landing between
    the two updates below, which would fail its run yet leave it holding the thread. Their
    runs are locked before them, in `finish_run`'s order (run, then thread), so that a run
    finishing meanwhile waits rather than deadlocks."""
    alive = list(alive)
    held_by_others = or_(col(Thread.lease_run_id).is_(None), col(Thread.lease_run_id).not_in(alive))
    expired = (col(Thread.status) == "busy", col(Thread.locked_until) < func.now(), held_by_others)
    expired_ids = select(col(Thread.id)).where(*expired).scalar_subquery()
    unfinished = col(Run.status).in_(UNFINISHED)
    lapsed_runs = select(col(Run.id)).where(unfinished, col(Run.thread_id).in_(expired_ids))
    await session.exec(lapsed_runs.order_by(col(Run.id)).with_for_update())
    await session.exec(select(col(Thread.id)).where(*expired).order_by(col(Thread.id)).with_for_update())
    lapsed = (
        select(col(Thread.id))
        .where(
            or_(
                col(Thread.locked_until) < func.now(),
                # Not a queued run in the instant between one run's release and its taking over.
                and_(col(Thread.locked_until).is_(None), col(Thread.updated_at) < func.now() - lease),
            )
        )
        .scalar_subquery()
    )
    superseded = exists().where(
        col(Thread.id) == col(Run.thread_id), col(Thread.lease_run_id).is_distinct_from(col(Run.id))
    )
    statement = (
        update(Run)
        .where(
            unfinished,
            col(Run.id).not_in(alive),
            or_(col(Run.thread_id).in_(lapsed), and_(col(Run.status) == "running", superseded)),
            # A queued run's process touches it at each of its own sweeps (`touch_pending_runs`).
            or_(col(Run.status) == "running", col(Run.updated_at) < func.now() - lease),
        )
        .values(status="error", error_kind=ORPHANED_KIND, error=message, updated_at=func.now())
        .returning(col(Run.id))
    )
    orphans = list((await session.exec(statement)).all())
    # A run alive here keeps its thread: its renewal was late (a busy event loop), not lost.
    release = update(Thread).where(*expired).values(status="error", locked_until=None, lease_run_id=None)
    await session.exec(release)
    if orphans:  # for whoever waits for them, on any replica
        await (await session.connection()).execute(
            _ANNOUNCE_ENDS, {"channel": SIGNALS_CHANNEL, "runs": [str(run_id) for run_id in orphans]}
        )
    return len(orphans)


def utc_today() -> date:
    return datetime.now(UTC).date()
