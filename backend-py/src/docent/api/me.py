"""The caller's own profile."""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from docent.api.deps import UserSession
from docent.auth import CurrentPrincipal
from docent.db import documents, profiles
from docent.db.models import Profile
from docent.errors import NotFound

router = APIRouter(tags=["me"])


class ProfileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    email: str | None
    display_name: str | None
    created_at: datetime
    updated_at: datetime


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")

    @field_validator("display_name")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return (value or "").strip() or None


@router.get("/me", response_model=ProfileOut)
async def read_me(principal: CurrentPrincipal, session: UserSession) -> Profile:
    return _found(await profiles.get_profile(session, user_id=principal.user_id))


@router.patch("/me", response_model=ProfileOut)
async def update_me(body: ProfileUpdate, principal: CurrentPrincipal, session: UserSession) -> Profile:
    return _found(await profiles.update_profile(session, user_id=principal.user_id, display_name=body.display_name))


@router.delete("/me/data", status_code=204)
async def erase_my_data(principal: CurrentPrincipal, session: UserSession) -> None:
    """Erase everything the caller owns: documents (with chunks and sources) and the profile.

    The account itself belongs to Supabase Auth; the next request starts a fresh profile."""
    await documents.delete_all_documents(session, user_id=principal.user_id)
    await profiles.delete_profile(session, user_id=principal.user_id)


def _found(profile: Profile | None) -> Profile:
    if profile is None:
        raise NotFound("profile not found")
    return profile
