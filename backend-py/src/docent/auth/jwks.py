"""The Supabase project's signing keys, fetched from its JWKS endpoint and cached.

Refreshes are rate limited (one attempt per `min_refresh_interval`, shared by every
caller) so a burst of tokens with made-up `kid`s cannot become a burst of fetches, and a
failed refresh keeps the keys already known so verification survives a JWKS outage. A
known key is answered at once, even when the keys are due for a refresh: that refresh runs
beside the request, so a slow JWKS endpoint holds no request that it need not.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    algorithm: str
    key: Any  # a cryptography public key object


def parse_jwks(document: object) -> dict[str, SigningKey]:
    """The usable verification keys of a JWKS document, by `kid`; unusable entries are skipped."""
    entries = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise ValueError("JWKS document has no 'keys' list")
    keys: dict[str, SigningKey] = {}
    for entry in entries:
        key = _signing_key(entry)
        if key is not None:
            keys[key.kid] = key
    return keys


def _signing_key(entry: object) -> SigningKey | None:
    """Asymmetric keys only: a symmetric ("oct") key from a JWKS is never trusted."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("kid"), str):
        return None
    kty, curve = entry.get("kty"), entry.get("crv")
    algorithm = "ES256" if (kty, curve) == ("EC", "P-256") else "RS256" if kty == "RSA" else None
    if algorithm is None or entry.get("alg", algorithm) != algorithm or entry.get("use", "sig") != "sig":
        return None
    try:
        key = jwt.PyJWK(dict(entry), algorithm=algorithm).key
    except (jwt.PyJWTError, ValueError):
        log.warning("jwks_key_skipped", extra={"kid": entry["kid"]})
        return None
    return SigningKey(kid=entry["kid"], algorithm=algorithm, key=key)


class JwksCache:
    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        min_refresh_interval: float = 60.0,
        max_age: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._http = http
        self._min_refresh_interval = min_refresh_interval
        self._max_age = max_age
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.refreshing: asyncio.Task[None] | None = None  # a refresh begun beside a request

    async def key(self, kid: str) -> SigningKey | None:
        """The key named `kid`: a known one at once, an unknown one after a refresh."""
        known = self._keys.get(kid)
        if known is None:
            await self._refresh()
            return self._keys.get(kid)
        if self._due() and self.refreshing is None:
            self.refreshing = asyncio.create_task(self._refresh_beside())
        return known

    def _due(self) -> bool:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > self._max_age
        return stale and self._may_attempt(now)

    def _may_attempt(self, now: float) -> bool:
        """Whether the rate limit allows a fetch now."""
        return self._attempted_at is None or now - self._attempted_at >= self._min_refresh_interval

    async def _refresh_beside(self) -> None:
        try:
            await self._refresh()
        finally:
            self.refreshing = None

    async def _refresh(self) -> None:
        async with self._lock:
            now = self._clock()
            if not self._may_attempt(now):
                return
            self._attempted_at = now
            try:
                response = await self._http.get(self._url, timeout=5.0)
                response.raise_for_status()
                keys = parse_jwks(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("jwks_refresh_failed", extra={"url": self._url, "error": type(exc).__name__})
                return
            if not keys and self._keys:
                log.warning("jwks_refresh_empty", extra={"url": self._url})
                return
            self._keys = keys
            self._fetched_at = now
            log.info("jwks_refreshed", extra={"url": self._url, "kids": sorted(keys)})
