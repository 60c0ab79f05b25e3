"""Profiles gateway: one row per user, readable and writable only by that user (RLS)."""

from uuid import UUID

from sqlalchemy import func, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db.models import Profile
from docent.errors import Unauthorized

# Every request runs this: a plain statement, without the ORM's construction and compiling.
_ENSURE = text("insert into public.profiles (id, email) values (:id, :email) on conflict (id) do nothing")


async def ensure_profile(session: AsyncSession, *, user_id: UUID, email: str | None) -> None:
    try:
        await (await session.connection()).execute(_ENSURE, {"id": user_id, "email": email})
    except IntegrityError:
        # profiles.id references auth.users: the token is valid but its user is gone.
        raise Unauthorized("the token's user does not exist", code="unknown_user") from None


async def get_profile(session: AsyncSession, *, user_id: UUID) -> Profile | None:
    result = await session.exec(select(Profile).where(col(Profile.id) == user_id))
    return result.one_or_none()


async def delete_profile(session: AsyncSession, *, user_id: UUID) -> None:
    await session.exec(delete(Profile).where(col(Profile.id) == user_id))


async def update_profile(session: AsyncSession, *, user_id: UUID, display_name: str | None) -> Profile | None:
    statement = (
        update(Profile)
        .where(col(Profile.id) == user_id)
        .values(display_name=display_name, updated_at=func.now())
        .returning(Profile)
    )
    result = await session.exec(statement)
    return result.scalars().one_or_none()
