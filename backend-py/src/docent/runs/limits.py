"""A user's run limits, checked as a run is admitted: runs a minute and tokens a day."""

import math
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db import runs as runs_db
from docent.errors import TooManyRequests
from docent.settings import Settings


async def check_limits(session: AsyncSession, settings: Settings, *, user_id: UUID) -> None:
    """In the admission's transaction: 429, with when to try again, once the user has started
    `runs_per_minute` runs in the last minute or spent today's token budget. Taking a slot
    is written in that transaction, so a refused admission takes none."""
    if settings.runs_per_minute:
        oldest = await runs_db.start_run_slot(
            session, user_id=user_id, window=timedelta(minutes=1), limit=settings.runs_per_minute
        )
        if oldest is not None:
            wait = 60 - (datetime.now(UTC) - oldest).total_seconds()
            raise TooManyRequests(
                f"At most {settings.runs_per_minute} runs a minute; try again shortly.",
                retry_after=math.ceil(wait),
                code="rate_limited",
            )
    budget = settings.daily_token_budget
    if budget and await runs_db.tokens_today(session, today=runs_db.utc_today()) >= budget:
        now = datetime.now(UTC)
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        raise TooManyRequests(
            f"Today's budget of {budget} tokens is spent; it renews at 00:00 UTC.",
            retry_after=math.ceil((midnight - now).total_seconds()),
            code="token_budget_exceeded",
        )
