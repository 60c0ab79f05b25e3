"""Development access tokens with the claim set Supabase Auth (GoTrue) issues."""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import jwt

# The issuer `supabase start` uses, for tokens minted when SUPABASE_URL is not set.
LOCAL_ISSUER = "http://127.0.0.1:54321/auth/v1"


def mint_access_token(
    *,
    secret: str,
    user_id: UUID,
    email: str,
    ttl: timedelta,
    issuer: str | None,
    now: datetime | None = None,
) -> str:
    issued = int((now or datetime.now(UTC)).timestamp())
    claims = {
        "iss": issuer or LOCAL_ISSUER,
        "sub": str(user_id),
        "aud": "authenticated",
        "exp": issued + int(ttl.total_seconds()),
        "iat": issued,
        "email": email,
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {"email": email, "email_verified": True},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": issued}],
        "session_id": str(uuid4()),
        "is_anonymous": False,
    }
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})
