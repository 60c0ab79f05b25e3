"""`auth.users` rows for development tokens (Supabase Auth owns this table in production)."""

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_FIND = text("select id from auth.users where email = :email")
_CREATE = text(
    "insert into auth.users (id, email, aud, role, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)"
    " values (gen_random_uuid(), :email, 'authenticated', 'authenticated',"
    ' \'{"provider": "email", "providers": ["email"]}\', \'{}\', now(), now())'
    " returning id"
)


async def find_auth_user(conn: AsyncConnection, *, email: str) -> UUID | None:
    found = (await conn.execute(_FIND, {"email": email})).scalar_one_or_none()
    return UUID(str(found)) if found is not None else None


async def ensure_auth_user(conn: AsyncConnection, *, email: str) -> UUID:
    found = (await conn.execute(_FIND, {"email": email})).scalar_one_or_none()
    if found is None:
        found = (await conn.execute(_CREATE, {"email": email})).scalar_one()
    return UUID(str(found))
