"""Local verification of Supabase access tokens.

Each algorithm is bound to the key that verifies it: HS256 only ever with the project's
JWT secret, ES256/RS256 only with the JWKS key named by `kid` and of that key's type.
Header fields that point at other keys (`jku`, `x5u`, `jwk`) are never read.
"""

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import jwt

from docent.auth.jwks import JwksCache
from docent.auth.principal import Principal
from docent.errors import Unauthorized

MAX_TOKEN_BYTES = 8 * 1024
_MAX_HEADER_CHARS = 1024
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
# The form Postgres's uuid input accepts too (Python's UUID() also takes urn: and odd hyphens).
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud"]


class TokenVerifier:
    def __init__(
        self,
        *,
        hs256_secret: str | None,
        jwks: JwksCache | None,
        issuer: str | None,
        leeway: float = 30.0,
    ) -> None:
        self._hs256_secret = hs256_secret
        self._jwks = jwks
        self._issuer = issuer
        self._leeway = leeway
        accepted = (["HS256"] if hs256_secret else []) + (["ES256", "RS256"] if jwks else [])
        self._accepted = ", ".join(accepted) or "none"

    async def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthorized("token is larger than 8 KB", code="invalid_token")
        header = _read_header(token)
        key, algorithm = await self._key_for(header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience="authenticated",
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token has expired", code="token_expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"token rejected: {_reason(exc)}", code="invalid_token") from None
        return _principal(claims)

    async def _key_for(self, header: Mapping[str, Any]) -> tuple[Any, str]:
        algorithm = header.get("alg")
        if algorithm == "HS256" and self._hs256_secret:
            return self._hs256_secret, "HS256"
        if algorithm in ("ES256", "RS256") and self._jwks is not None:
            kid = header.get("kid")
            if not isinstance(kid, str) or not 0 < len(kid) <= 200:
                raise Unauthorized("token header has no usable key id (kid)", code="invalid_token")
            signing_key = await self._jwks.key(kid)
            if signing_key is None:
                raise Unauthorized("token is signed by an unknown key", code="unknown_key")
            if signing_key.algorithm != algorithm:
                raise Unauthorized("token algorithm does not match its key", code="invalid_token")
            return signing_key.key, algorithm
        raise Unauthorized(f"token algorithm is not accepted (accepted: {self._accepted})", code="invalid_token")


def _read_header(token: str) -> Mapping[str, Any]:
    segments = token.split(".")
    if len(segments) != 3:
        raise Unauthorized("token must have three dot-separated segments", code="invalid_token")
    header, payload, signature = segments
    if len(header) > _MAX_HEADER_CHARS:
        raise Unauthorized("token header is too large", code="invalid_token")
    if not (_BASE64URL.fullmatch(header) and _BASE64URL.fullmatch(payload) and _BASE64URL.fullmatch(signature or "-")):
        raise Unauthorized("token segments must be base64url", code="invalid_token")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        raise Unauthorized("token header is not base64url-encoded JSON", code="invalid_token") from None
    if not isinstance(decoded, dict):
        raise Unauthorized("token header is not a JSON object", code="invalid_token")
    return decoded


def _principal(claims: Mapping[str, Any]) -> Principal:
    if claims.get("role") != "authenticated":
        raise Unauthorized("token role must be 'authenticated'", code="invalid_token")
    subject = claims["sub"]
    if not isinstance(subject, str) or not _CANONICAL_UUID.fullmatch(subject):
        raise Unauthorized("token subject (sub) must be a UUID", code="invalid_token")
    if "\\u0000" in json.dumps(claims):
        # Postgres jsonb cannot hold NUL; such claims could never reach request.jwt.claims.
        raise Unauthorized("token claims contain a NUL character", code="invalid_token")
    user_id = UUID(subject)
    email = claims.get("email")
    return Principal(user_id=user_id, email=email if isinstance(email, str) and email else None, claims=claims)


def _reason(exc: jwt.InvalidTokenError) -> str:
    reasons: list[tuple[type[jwt.InvalidTokenError], str]] = [
        (jwt.MissingRequiredClaimError, f"missing claim '{getattr(exc, 'claim', '')}'"),
        (jwt.InvalidAudienceError, "audience must include 'authenticated'"),
        (jwt.InvalidIssuerError, "issuer does not match this project"),
        (jwt.ImmatureSignatureError, "token is not valid yet"),
        (jwt.InvalidSignatureError, "signature does not verify"),
    ]
    return next((text for kind, text in reasons if isinstance(exc, kind)), "malformed token")
