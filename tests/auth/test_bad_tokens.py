"""Every malformed, forged or unacceptable token: 401, a Bearer challenge, JSON, no database work."""

import base64
import hashlib
import hmac
import json
import time
import uuid
import warnings
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.conftest import DatabaseActivity
from tests.helpers import SECRET, KeyPair, b64url, claims, hs256, unsigned

USER = uuid.uuid4()
ATTACKER = KeyPair("attacker-key")
_PEM = ATTACKER.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _tampered() -> str:
    header, _, signature = hs256(claims(USER)).split(".")
    payload = b64url(json.dumps(claims(uuid.uuid4())).encode())
    return f"{header}.{payload}.{signature}"


def _truncated() -> str:
    return hs256(claims(USER))[:-6]


def _hs256_with_public_key(key: bytes) -> str:
    # PyJWT refuses to HMAC with a PEM, which is the point; forge the signature by hand.
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{b64url(json.dumps(claims(USER)).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def _hs512() -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims(USER), SECRET, algorithm="HS512")


BAD_TOKENS: dict[str, str | None] = {
    "two segments": "abc.def",
    "four segments": hs256(claims(USER)) + ".extra",
    "not base64url": "e30=.e30=.sig!",
    "header not json": f"{b64url(b'not json')}.{b64url(b'{}')}.{b64url(b'sig')}",
    "header not an object": f"{b64url(b'[1]')}.{b64url(b'{}')}.{b64url(b'sig')}",
    "alg none": unsigned({"alg": "none", "typ": "JWT"}, claims(USER)),
    "alg None": unsigned({"alg": "None"}, claims(USER)),
    "alg NONE with signature": unsigned({"alg": "NONE"}, claims(USER), b"x"),
    "alg missing": unsigned({"typ": "JWT"}, claims(USER), b"x"),
    "hs256 signed with public PEM": _hs256_with_public_key(_PEM),
    "hs256 signed with public JWK": _hs256_with_public_key(json.dumps(ATTACKER.jwk()).encode()),
    "algorithm not configured (HS512)": _hs512(),
    "ES256 without a JWKS configured": ATTACKER.sign(claims(USER)),
    "embedded jwk header": ATTACKER.sign(claims(USER), jwk=ATTACKER.jwk()),
    "expired": hs256(claims(USER, exp=1_000_000_000, iat=999_999_000)),
    "not yet valid (nbf)": hs256(claims(USER, nbf=4_000_000_000)),
    "issued in the future": hs256(claims(USER, iat=4_000_000_000, exp=4_000_003_600)),
    "missing exp": hs256(claims(USER, exp=None)),
    "missing iat": hs256(claims(USER, iat=None)),
    "aud missing": hs256(claims(USER, aud=None)),
    "aud anon": hs256(claims(USER, aud="anon")),
    "aud list without authenticated": hs256(claims(USER, aud=["anon", "service"])),
    "role anon": hs256(claims(USER, role="anon")),
    "role service_role": hs256(claims(USER, role="service_role")),
    "role missing": hs256(claims(USER, role=None)),
    "sub missing": hs256(claims(USER, sub=None)),
    "sub not a uuid": hs256(claims(USER, sub="admin")),
    "sub not a string": hs256(claims(USER, sub=12345)),
    "wrong secret": hs256(claims(USER), "another-secret-that-is-at-least-32-characters"),
    "payload changed under the old signature": _tampered(),
    "truncated signature": _truncated(),
    "empty signature": hs256(claims(USER)).rsplit(".", 1)[0] + ".",
    "1 MB token": "a" * (1 << 20),
    "deeply nested header json": f"{b64url(b'[' * 4000)}.{b64url(b'{}')}.{b64url(b'sig')}",
    "sub as urn:uuid": hs256(claims(USER, sub=f"urn:uuid:{USER}")),
    "sub with odd hyphens": hs256(claims(USER, sub=USER.hex[:4] + "-" + USER.hex[4:])),
    "NUL inside a claim": hs256(claims(USER, user_metadata={"name": "a\u0000b"})),
}

BAD_HEADERS: dict[str, dict[str, str]] = {
    "no Authorization header": {},
    "Basic scheme": {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()},
    "Token scheme": {"Authorization": f"Token {hs256(claims(USER))}"},
    "Bearer without token": {"Authorization": "Bearer "},
    "bare token": {"Authorization": hs256(claims(USER))},
}


def _assert_rejected(response: httpx.Response, activity: DatabaseActivity) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail"}
    assert body["detail"]
    assert "Traceback" not in body["detail"]
    assert activity.checkouts == 0, "a rejected token must cost no database work"
    assert activity.statements == []
    return body


@pytest.mark.parametrize("token", list(BAD_TOKENS.values()), ids=list(BAD_TOKENS))
async def test_bad_token_is_rejected_without_database_work(
    client: httpx.AsyncClient, db_activity: DatabaseActivity, token: str
) -> None:
    response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    _assert_rejected(response, db_activity)


@pytest.mark.parametrize("headers", list(BAD_HEADERS.values()), ids=list(BAD_HEADERS))
async def test_bad_authorization_header_is_rejected(
    client: httpx.AsyncClient, db_activity: DatabaseActivity, headers: dict[str, str]
) -> None:
    _assert_rejected(await client.get("/me", headers=headers), db_activity)


async def test_missing_token_gets_a_plain_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/me")
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "missing_token"


async def test_invalid_token_challenge_names_the_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers={"Authorization": f"Bearer {BAD_TOKENS['expired']}"})
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.json() == {"error": "token_expired", "detail": "token has expired"}


async def test_rejections_say_why(client: httpx.AsyncClient) -> None:
    async def detail(name: str) -> str:
        response = await client.get("/me", headers={"Authorization": f"Bearer {BAD_TOKENS[name]}"})
        return str(response.json()["detail"])

    assert "audience" in await detail("aud anon")
    assert "role" in await detail("role service_role")
    assert "UUID" in await detail("sub not a uuid")
    assert "signature" in await detail("payload changed under the old signature")
    assert "not accepted" in await detail("alg none")
    assert "8 KB" in await detail("1 MB token")


async def test_a_valid_token_is_accepted(client: httpx.AsyncClient, user: tuple[uuid.UUID, dict[str, str]]) -> None:
    user_id, headers = user
    response = await client.get("/me", headers=headers)
    assert response.status_code == 200
    assert response.json()["id"] == str(user_id)


async def test_leeway_accepts_a_token_expired_seconds_ago(
    client: httpx.AsyncClient, user: tuple[uuid.UUID, dict[str, str]]
) -> None:
    user_id, _ = user
    token = hs256(claims(user_id, exp=int(time.time()) - 5))
    assert (await client.get("/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200
