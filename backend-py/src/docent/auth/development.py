"""Development sign-in: an access token for any email, with its `auth.users` row.

One code path for `docent token` and the web page's local sign-in (`POST /web/dev-token`);
both exist only with APP_ENV=development and the local HS256 secret in force.
"""

import re
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from docent.auth.tokens import mint_access_token
from docent.db.users import ensure_auth_user
from docent.settings import Settings

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}")


def is_email(value: str) -> bool:
    return _EMAIL.fullmatch(value) is not None


def development_secret(settings: Settings) -> str | None:
    """The secret development tokens are signed with; None where they must not exist."""
    secret = settings.hs256_secret
    return secret.get_secret_value() if settings.is_development and secret is not None else None


async def development_token(
    conn: AsyncConnection, *, secret: str, email: str, ttl: timedelta, issuer: str | None
) -> str:
    """A Supabase-shaped token for `email`, creating the user if new (inside the caller's transaction)."""
    user_id = await ensure_auth_user(conn, email=email)
    return mint_access_token(secret=secret, user_id=user_id, email=email, ttl=ttl, issuer=issuer)
