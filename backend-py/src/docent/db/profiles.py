"""Profiles gateway: one row per user, readable and writable only by that user (RLS).

A request's transaction makes the caller's row when it is missing (`user_transaction`)."""

from uuid import UUID

from sqlalchemy import func
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db.models import Profile


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
