"""Per-request cost of token verification, in-process (`make bench`).

Verifies the same valid token many times with each algorithm and prints the median and
p95 microseconds per verification, beside the cost of a bare HMAC/ECDSA/RSA signature
check with PyJWT alone (the floor Docent's checks sit on).
"""

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from docent.auth import JwksCache, TokenVerifier
from docent.auth.jwks import parse_jwks

ROUNDS = 2000
SECRET = "bench-secret-that-is-at-least-32-characters-long"


def _claims() -> dict[str, Any]:
    now = int(time.time())
    return {"sub": str(uuid.uuid4()), "aud": "authenticated", "role": "authenticated", "exp": now + 3600, "iat": now}


async def _measure(call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    for _ in range(100):
        await call()
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - started) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95)]


async def main() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = {
        "keys": [
            {**jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True), "kid": "ec", "alg": "ES256"},
            {**jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True), "kid": "rsa", "alg": "RS256"},
        ]
    }
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json=jwks))  # a loopback-free JWKS for timing
    async with httpx.AsyncClient(transport=transport) as http:
        verifier = TokenVerifier(hs256_secret=SECRET, jwks=JwksCache("http://jwks", http), issuer=None)
        keys = parse_jwks(jwks)
        cases = {
            "HS256": (jwt.encode(_claims(), SECRET, "HS256"), SECRET),
            "ES256": (jwt.encode(_claims(), ec_key, "ES256", headers={"kid": "ec"}), keys["ec"].key),
            "RS256": (jwt.encode(_claims(), rsa_key, "RS256", headers={"kid": "rsa"}), keys["rsa"].key),
        }
        print(f"token verification, {ROUNDS} rounds each (µs per token; median / p95)")
        print(f"{'alg':6} {'docent verify':>18} {'pyjwt decode alone':>22} {'ratio':>6}")
        for algorithm, (token, key) in cases.items():
            docent = await _measure(lambda token=token: verifier.verify(token))

            async def bare(token: str = token, key: Any = key, algorithm: str = algorithm) -> object:
                return jwt.decode(token, key, [algorithm], audience="authenticated")

            floor = await _measure(bare)
            print(
                f"{algorithm:6} {docent[0]:9.1f} / {docent[1]:6.1f} {floor[0]:11.1f} / {floor[1]:6.1f}"
                f" {docent[0] / floor[0]:6.2f}"
            )


if __name__ == "__main__":
    asyncio.run(main())
