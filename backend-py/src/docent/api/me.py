"""The caller's own profile."""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from docent.api.deps import AgentGraph, AppSettings, Runs, Sessions, UserSession
from docent.api.json_body import StrictJSONRoute
from docent.auth import CurrentPrincipal
from docent.db import documents, profiles, runs, threads
from docent.db.checkpoints import forget_threads
from docent.db.models import Profile
from docent.db.session import user_transaction
from docent.errors import Conflict, NotFound
from docent.ingestion.clean import has_invisible

router = APIRouter(tags=["me"], route_class=StrictJSONRoute)


class ProfileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    email: str | None
    display_name: str | None
    created_at: datetime
    updated_at: datetime


class Tokens(BaseModel):
    input_tokens: int
    output_tokens: int
    runs: int


class Usage(BaseModel):
    today: Tokens
    total: Tokens
    daily_token_budget: int | None  # None: unlimited
    runs_per_minute: int | None


class MeOut(ProfileOut):
    usage: Usage


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(max_length=100)

    @field_validator("display_name")
    @classmethod
    def _visible_or_none(cls, value: str | None) -> str | None:
        if value is not None and has_invisible(value):  # control, bidi and zero-width characters
            raise ValueError("the display name may not hold control or invisible characters")
        return (value or "").strip() or None


@router.get("/me", response_model=MeOut)
async def read_me(principal: CurrentPrincipal, session: UserSession, settings: AppSettings) -> MeOut:
    """The profile, and token usage (UTC days) against the caller's limits."""
    profile = _found(await profiles.get_profile(session, user_id=principal.user_id))
    usage = await runs.usage_summary(session, today=runs.utc_today())
    limits = {
        "daily_token_budget": settings.daily_token_budget or None,
        "runs_per_minute": settings.runs_per_minute or None,
    }
    return MeOut.model_validate(
        ProfileOut.model_validate(profile).model_dump() | {"usage": Usage.model_validate(usage | limits)}
    )


@router.patch("/me", response_model=ProfileOut)
async def update_me(body: ProfileUpdate, principal: CurrentPrincipal, session: UserSession) -> Profile:
    return _found(await profiles.update_profile(session, user_id=principal.user_id, display_name=body.display_name))


@router.delete("/me/data", status_code=204)
async def erase_my_data(principal: CurrentPrincipal, sessions: Sessions, graph: AgentGraph, manager: Runs) -> None:
    """Erase everything the caller owns: threads (with runs, feedback and checkpoints),
    documents (with chunks and sources) and the profile. Daily token usage is kept, so that
    erasing cannot reset the budget.

    The account itself belongs to Supabase Auth; the next request starts a fresh profile."""
    # The caller's runs end first, before a transaction holds a pooled connection (each run
    # needs one to record its end) or locks the rows a finishing run updates.
    await manager.cancel_runs_to_delete(principal.user_id)
    async with user_transaction(sessions, principal) as session:
        await runs.lock_unfinished_runs(session)
        if await runs.held_run_ids(session):  # another replica's run that has not ended yet
            raise Conflict("A run is still in flight; try again in a moment.", code="thread_busy")
        owned = await threads.delete_all_threads(session)  # their checkpoints with them (a trigger)
        await documents.delete_all_documents(session, user_id=principal.user_id)
        await profiles.delete_profile(session, user_id=principal.user_id)
    forget_threads(graph, owned)


def _found(profile: Profile | None) -> Profile:
    if profile is None:
        raise NotFound("profile not found")
    return profile
