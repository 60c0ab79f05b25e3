"""Asymmetric tokens verified with keys from a real (local) JWKS endpoint."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from docent.auth import JwksCache, TokenVerifier
from docent.auth.jwks import parse_jwks
from docent.errors import Unauthorized
from docent.main import create_app
from docent.settings import Settings
from tests.conftest import DatabaseActivity, serve_in_process
from tests.helpers import JwksServer, KeyPair, claims, create_user, hs256


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.keys = [KeyPair("es-1"), KeyPair("rs-1", "RS256")]
    with server.running():
        yield server


@pytest.fixture
async def jwks_client(
    jwks_server: JwksServer, make_settings: Callable[..., Settings]
) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(create_app(make_settings(supabase_url=jwks_server.url))) as http:
        yield http


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("kid", ["es-1", "rs-1"])
async def test_asymmetric_tokens_verify_against_the_jwks(
    jwks_client: httpx.AsyncClient, jwks_server: JwksServer, database_url: str, kid: str
) -> None:
    user_id = create_user(database_url)
    key = next(key for key in jwks_server.keys if key.kid == kid)
    token = key.sign(claims(user_id, iss=f"{jwks_server.url}/auth/v1"))
    response = await jwks_client.get("/me", headers=_bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(user_id)


async def test_issuer_must_be_the_configured_project(jwks_client: httpx.AsyncClient, jwks_server: JwksServer) -> None:
    token = jwks_server.keys[0].sign(claims(uuid.uuid4(), iss="https://evil.example/auth/v1"))
    response = await jwks_client.get("/me", headers=_bearer(token))
    assert response.status_code == 401
    assert "issuer" in response.json()["detail"]


async def test_algorithm_must_match_the_key_it_names(
    jwks_client: httpx.AsyncClient, jwks_server: JwksServer, db_activity: DatabaseActivity
) -> None:
    rsa_key = KeyPair("es-1", "RS256")  # an RSA signature claiming the EC key's kid
    token = rsa_key.sign(claims(uuid.uuid4(), iss=f"{jwks_server.url}/auth/v1"))
    response = await jwks_client.get("/me", headers=_bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == "token algorithm does not match its key"
    assert db_activity.checkouts == 0


async def test_random_kid_burst_costs_one_jwks_fetch(
    jwks_client: httpx.AsyncClient, jwks_server: JwksServer, db_activity: DatabaseActivity
) -> None:
    forger = KeyPair("unused")
    tokens = [
        forger.sign(claims(uuid.uuid4(), iss=f"{jwks_server.url}/auth/v1"), kid=uuid.uuid4().hex) for _ in range(200)
    ]
    responses = await asyncio.gather(*(jwks_client.get("/me", headers=_bearer(token)) for token in tokens))
    assert {response.status_code for response in responses} == {401}
    assert {response.json()["error"] for response in responses} == {"unknown_key"}
    assert jwks_server.fetches == 1
    assert db_activity.checkouts == 0


async def test_the_project_secret_works_beside_the_jwks(
    jwks_server: JwksServer, make_settings: Callable[..., Settings], database_url: str
) -> None:
    secret = "project-secret-" + "s" * 32
    settings = make_settings(supabase_url=jwks_server.url, supabase_jwt_secret=secret)
    async with serve_in_process(create_app(settings)) as http:
        token = hs256(claims(create_user(database_url), iss=f"{jwks_server.url}/auth/v1"), secret)
        assert (await http.get("/me", headers=_bearer(token))).status_code == 200


async def test_beside_a_real_project_the_local_secret_is_not_accepted(
    jwks_client: httpx.AsyncClient, jwks_server: JwksServer, database_url: str
) -> None:
    # SUPABASE_URL set, no secret, APP_ENV left at development: HS256 is simply not configured.
    token = hs256(claims(create_user(database_url), iss=f"{jwks_server.url}/auth/v1"))
    response = await jwks_client.get("/me", headers=_bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == "token algorithm is not accepted (accepted: ES256, RS256)"


# The cache itself, with a controllable clock, against the same real server.


def _verifier(server: JwksServer, clock: Clock) -> tuple[TokenVerifier, JwksCache, httpx.AsyncClient]:
    http = httpx.AsyncClient()
    cache = JwksCache(server.jwks_url, http, min_refresh_interval=60, max_age=600, clock=clock)
    return TokenVerifier(hs256_secret=None, jwks=cache, issuer=f"{server.url}/auth/v1"), cache, http


async def _refreshed(cache: JwksCache) -> None:
    """Wait for the refresh a request began beside itself, if any."""
    if (refreshing := cache.refreshing) is not None:
        await refreshing


def _token(server: JwksServer, key: KeyPair, **overrides: Any) -> str:
    return key.sign(claims(uuid.uuid4(), iss=f"{server.url}/auth/v1", **overrides))


async def test_rotation_is_picked_up_on_an_unknown_kid(jwks_server: JwksServer) -> None:
    clock = Clock()
    verifier, _, http = _verifier(jwks_server, clock)
    async with http:
        old, new = jwks_server.keys[0], KeyPair("es-2")
        await verifier.verify(_token(jwks_server, old))

        jwks_server.keys = [new]  # rotated: the old key revoked, a new one signing
        with pytest.raises(Unauthorized, match="unknown key"):
            await verifier.verify(_token(jwks_server, new))  # within a minute of the last fetch
        assert jwks_server.fetches == 1

        clock.now += 61
        principal = await verifier.verify(_token(jwks_server, new))
        assert principal.user_id is not None
        assert jwks_server.fetches == 2
        with pytest.raises(Unauthorized, match="unknown key"):
            await verifier.verify(_token(jwks_server, old))


async def test_cached_keys_keep_working_while_the_jwks_is_down(jwks_server: JwksServer) -> None:
    clock = Clock()
    verifier, cache, http = _verifier(jwks_server, clock)
    async with http:
        key = jwks_server.keys[0]
        await verifier.verify(_token(jwks_server, key))
        jwks_server.down = True
        clock.now += 3600  # long past max_age: a refresh is due and fails
        principal = await verifier.verify(_token(jwks_server, key))
        assert principal.email is not None
        await _refreshed(cache)
        assert jwks_server.fetches == 2
        await verifier.verify(_token(jwks_server, key))
        assert cache.refreshing is None  # the next attempt waits out the rate limit


async def test_a_known_key_answers_at_once_while_a_due_refresh_hangs(jwks_server: JwksServer) -> None:
    clock = Clock()
    verifier, cache, http = _verifier(jwks_server, clock)
    async with http:
        key = jwks_server.keys[0]
        await verifier.verify(_token(jwks_server, key))
        jwks_server.hang.clear()  # the endpoint stops answering
        clock.now += 3600
        async with asyncio.timeout(2):  # well under the refresh's own 5 s timeout: these do not wait for it
            for _ in range(5):
                assert (await verifier.verify(_token(jwks_server, key))).user_id is not None
        assert cache.refreshing is not None
        jwks_server.hang.set()
        await _refreshed(cache)
        assert jwks_server.fetches == 2


async def test_an_empty_jwks_does_not_wipe_known_keys(jwks_server: JwksServer) -> None:
    clock = Clock()
    verifier, cache, http = _verifier(jwks_server, clock)
    async with http:
        key = jwks_server.keys[0]
        await verifier.verify(_token(jwks_server, key))
        jwks_server.keys = []
        clock.now += 3600
        assert (await verifier.verify(_token(jwks_server, key))).user_id is not None
        await _refreshed(cache)
        assert jwks_server.fetches == 2
        assert (await verifier.verify(_token(jwks_server, key))).user_id is not None


async def test_jwks_unreachable_from_the_start_rejects_cleanly() -> None:
    clock = Clock()
    http = httpx.AsyncClient()
    async with http:
        cache = JwksCache("http://127.0.0.1:9/auth/v1/.well-known/jwks.json", http, clock=clock)
        verifier = TokenVerifier(hs256_secret=None, jwks=cache, issuer=None)
        with pytest.raises(Unauthorized, match="unknown key"):
            await verifier.verify(KeyPair("k").sign(claims(uuid.uuid4())))


def test_parse_jwks_keeps_only_usable_signature_keys() -> None:
    ec_key, rsa_key = KeyPair("ec"), KeyPair("rsa", "RS256")
    document = {
        "keys": [
            ec_key.jwk(),
            rsa_key.jwk(),
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"},
            {**KeyPair("enc").jwk(), "use": "enc"},
            {**KeyPair("lying").jwk(), "alg": "RS256"},
            {**KeyPair("no-kid").jwk(), "kid": None},
            {"kty": "EC", "kid": "broken", "crv": "P-256", "x": "AA", "y": "AA"},
            "not a key",
        ]
    }
    keys = parse_jwks(document)
    assert sorted(keys) == ["ec", "rsa"]
    assert (keys["ec"].algorithm, keys["rsa"].algorithm) == ("ES256", "RS256")


@pytest.mark.parametrize("document", [{}, {"keys": "x"}, [], "text"])
def test_parse_jwks_rejects_documents_without_keys(document: object) -> None:
    with pytest.raises(ValueError, match="keys"):
        parse_jwks(document)
