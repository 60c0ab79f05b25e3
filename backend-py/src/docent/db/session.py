"""User-scoped transactions: the database itself enforces who sees what.

The claims and `role authenticated` are set with `set_config(..., true)`, local to the
transaction, so they vanish at commit or rollback and never leak to the next user of the
pooled connection (safe behind the Supabase transaction pooler too). The login role
only switches into `authenticated`, which has no BYPASSRLS, so every policy applies.
"""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.auth.principal import Principal

# pgvector lives in `extensions` on Supabase (and here); its operators must resolve.
_ACT_AS = text(
    "select set_config('request.jwt.claims', :claims, true), set_config('role', 'authenticated', true),"
    " set_config('search_path', 'public, extensions', true)"
)


def acting_as(user_id: UUID) -> Principal:
    """The principal background work uses: the data's owner, so RLS still applies."""
    return Principal(user_id=user_id, email=None, claims={"sub": str(user_id), "role": "authenticated"})


@asynccontextmanager
async def service_transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction on the service's own login (no claims): its bookkeeping, and work
    across users. Commits on success, rolls back on error."""
    async with sessions() as session, session.begin():
        yield session


@asynccontextmanager
async def user_transaction(
    sessions: async_sessionmaker[AsyncSession], principal: Principal
) -> AsyncIterator[AsyncSession]:
    """One transaction acting as `principal`: commits on success, rolls back on error."""
    async with sessions() as session, session.begin():
        claims = json.dumps(dict(principal.claims))
        await (await session.connection()).execute(_ACT_AS, {"claims": claims})
        yield session
