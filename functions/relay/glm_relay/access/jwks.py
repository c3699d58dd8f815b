"""An identity provider's public keys (JWK Set): fetched, cached and refreshed without abuse.

Keys are fetched with httpx on first use (from the JWKS URL, or from the ``jwks_uri`` of the
issuer's ``/.well-known/openid-configuration`` when no URL is given) and kept for the life of the
container. The set is fetched again when a token names an unknown ``kid`` (a rotation) or when it
is older than ``max_age_seconds`` (so a key the provider withdrew stops working), but never more
than once per ``refresh_interval_seconds`` after a success or ``retry_interval_seconds`` after a
failure: a caller sending random ``kid`` values cannot make the relay hammer the provider.
Concurrent requests share one fetch.

When keys are needed and cannot be had (endpoint down, slow, not JSON, no usable key),
:class:`IdentityProviderUnavailable` is raised: the caller did nothing wrong, so the relay
answers a retryable 503. A failed refresh of a set that is merely old keeps the old keys in use,
so a provider outage does not lock out callers whose keys are known.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from glm_relay.access.tokens import AccessDenied

__all__ = [
    "DEFAULT_ALGORITHMS",
    "MAX_DOCUMENT_BYTES",
    "Fetch",
    "IdentityProviderUnavailable",
    "KeySet",
    "check_url",
    "fetch_with_httpx",
]

# The asymmetric JWS algorithms PyJWT implements with `cryptography` (RFC 7518, RFC 8037).
# Symmetric ones are never accepted: a provider's keys are public.
DEFAULT_ALGORITHMS: tuple[str, ...] = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
# Key type and curves each algorithm needs; an algorithm missing here cannot be configured.
KEY_SHAPE: dict[str, tuple[str, frozenset[str] | None]] = {
    **{alg: ("RSA", None) for alg in DEFAULT_ALGORITHMS if alg[:2] in ("RS", "PS")},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}

# A discovery document or key set larger than this is not what it claims to be.
MAX_DOCUMENT_BYTES = 256 * 1024
MAX_KEYS = 100
DEFAULT_FETCH_TIMEOUT_SECONDS = 3.0
DEFAULT_REFRESH_INTERVAL_SECONDS = 30.0
DEFAULT_RETRY_INTERVAL_SECONDS = 5.0
DEFAULT_JWKS_MAX_AGE_SECONDS = 3600.0
DISCOVERY_PATH = "/.well-known/openid-configuration"

Fetch = Callable[[str], Awaitable[bytes]]
"""GET a URL and return the body of a 200 answer; raise anything on any other outcome."""


class IdentityProviderUnavailable(Exception):
    """The provider's keys cannot be had right now; answer 503 and let the caller retry.

    ``message`` is what the caller sees. ``detail`` says what failed, for the logs (URLs and
    status codes, never a token). ``retry_after`` is how many seconds remain before the next
    fetch may be tried.
    """

    code = "identity_provider_unavailable"
    status = 503
    retryable = True

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__("identity provider unavailable")
        self.message = "identity provider unavailable"
        self.detail = detail
        self.retry_after = retry_after


class _FetchFailed(Exception):
    """Why a key-set refresh failed; becomes IdentityProviderUnavailable.detail."""


async def fetch_with_httpx(url: str, *, timeout: float = DEFAULT_FETCH_TIMEOUT_SECONDS) -> bytes:
    """The default :data:`Fetch`: one GET with httpx, no redirects, at most MAX_DOCUMENT_BYTES."""
    import httpx

    async with (
        httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
        client.stream("GET", url, headers={"Accept": "application/json"}) as response,
    ):
        if response.status_code != 200:
            raise _FetchFailed(f"GET {url} answered HTTP {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise _FetchFailed(f"GET {url} answered more than {MAX_DOCUMENT_BYTES} bytes")
        return bytes(body)


class KeySet:
    """The cached JWK Set of one provider, and the rules for fetching it again."""

    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str | None,
        fetch: Fetch | None = None,
        clock: Callable[[], float] = time.time,
        fetch_timeout_seconds: float = DEFAULT_FETCH_TIMEOUT_SECONDS,
        refresh_interval_seconds: float = DEFAULT_REFRESH_INTERVAL_SECONDS,
        retry_interval_seconds: float = DEFAULT_RETRY_INTERVAL_SECONDS,
        max_age_seconds: float = DEFAULT_JWKS_MAX_AGE_SECONDS,
    ) -> None:
        self.issuer = issuer
        self.refresh_interval_seconds = float(refresh_interval_seconds)
        self.retry_interval_seconds = float(retry_interval_seconds)
        self.max_age_seconds = float(max_age_seconds)
        self._fetch_timeout = float(fetch_timeout_seconds)
        self._fetch = fetch
        self._clock = clock
        self._jwks_url = jwks_url
        self._keys: tuple[dict[str, Any], ...] = ()
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._last_failure: str | None = None
        self._prepared: dict[tuple[int, str], Any] = {}
        self._refresh_task: asyncio.Task[None] | None = None

    async def key_for(self, kid: str | None, alg: str) -> Any:
        """The PyJWK that verifies a token with this header, refreshing the set when it helps.

        Raises :class:`~glm_relay.access.AccessDenied` for an unknown or unsuitable key, and
        :class:`IdentityProviderUnavailable` when the set cannot be fetched.
        """
        await self._ensure_keys()
        position = self._select(kid, alg)
        if position is None and await self._refresh(unknown_key=True):
            position = self._select(kid, alg)
        if position is None:
            raise AccessDenied("unknown signing key")
        return self._prepared_key(position, alg)

    async def _ensure_keys(self) -> None:
        """Have a key set: fetch the first one, or a fresh one when it is too old."""
        if self._fetched_at is None:
            await self._refresh(unknown_key=False)
            if self._fetched_at is None:
                raise self._unavailable()
        elif self._clock() - self._fetched_at >= self.max_age_seconds:
            # Best effort: on failure the old keys stay in use.
            await self._refresh(unknown_key=False)

    async def _refresh(self, *, unknown_key: bool) -> bool:
        """Fetch the key set unless the last attempt was too recent; whether keys changed hands.

        Concurrent callers share one fetch. When a token names an unknown key and the provider
        cannot be reached (now, or at the last attempt still within its back-off), the answer is
        "unavailable" rather than "unknown key": the key may well be new.
        """
        loop = asyncio.get_running_loop()
        task = self._refresh_task
        if task is None or task.done() or task.get_loop() is not loop:
            if not self._refresh_due():
                if unknown_key and self._last_failure is not None:
                    raise self._unavailable()
                return False
            self._attempted_at = self._clock()
            task = loop.create_task(self._fetch_keys())
            self._refresh_task = task
        # Shielded: a caller that gives up does not cancel the fetch the others wait for.
        await asyncio.shield(task)
        if self._last_failure is not None:
            if unknown_key:
                raise self._unavailable()
            return False
        return True

    def _refresh_due(self) -> bool:
        if self._attempted_at is None:
            return True
        elapsed = self._clock() - self._attempted_at
        if elapsed < 0:  # the clock went back: do not wait for it to catch up
            return True
        return elapsed >= self._wait()

    def _wait(self) -> float:
        return self.retry_interval_seconds if self._last_failure else self.refresh_interval_seconds

    def _unavailable(self) -> IdentityProviderUnavailable:
        retry_after = 0.0
        if self._attempted_at is not None:
            retry_after = max(0.0, self._attempted_at + self._wait() - self._clock())
        detail = self._last_failure or "the key set has not been fetched"
        return IdentityProviderUnavailable(detail, retry_after)

    async def _fetch_keys(self) -> None:
        """One refresh: discovery when needed, then the key set; records success or failure."""
        try:
            async with asyncio.timeout(self._fetch_timeout * 2):
                if self._jwks_url is None:
                    self._jwks_url = await self._discover()
                keys = _usable_keys(await self._get_json(self._jwks_url, "key set"))
        except _FetchFailed as failed:
            self._last_failure = str(failed)
        except TimeoutError:
            self._last_failure = "fetching the provider's keys timed out"
        except Exception as exc:  # any transport error: the provider is unavailable
            self._last_failure = f"fetching the provider's keys failed: {type(exc).__name__}"
        else:
            self._keys = keys
            self._prepared = {}
            self._fetched_at = self._clock()
            self._last_failure = None

    async def _discover(self) -> str:
        url = self.issuer.rstrip("/") + DISCOVERY_PATH
        document = await self._get_json(url, "discovery document")
        if document.get("issuer") != self.issuer:
            raise _FetchFailed(f"the discovery document at {url} names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise _FetchFailed(f"the discovery document at {url} has no jwks_uri")
        try:
            check_url(jwks_uri, "jwks_uri")
        except ValueError as bad:
            raise _FetchFailed(f"the discovery document at {url}: {bad}") from None
        return jwks_uri

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        if self._fetch is None:
            body = await fetch_with_httpx(url, timeout=self._fetch_timeout)
        else:
            body = await self._fetch(url)
        if len(body) > MAX_DOCUMENT_BYTES:
            raise _FetchFailed(f"the {what} at {url} is larger than {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            raise _FetchFailed(f"the {what} at {url} is not JSON") from None
        if not isinstance(document, dict):
            raise _FetchFailed(f"the {what} at {url} is not a JSON object")
        return document

    def _select(self, kid: str | None, alg: str) -> int | None:
        """The position of the key for this token, ``None`` when the set has none."""
        if kid is not None:
            named = [i for i, jwk in enumerate(self._keys) if jwk.get("kid") == kid]
            if not named:
                return None
            for i in named:
                if _key_suits(self._keys[i], alg):
                    return i
            raise AccessDenied("signing key does not match the token algorithm")
        usable = [i for i, jwk in enumerate(self._keys) if _key_suits(jwk, alg)]
        if len(usable) > 1:
            raise AccessDenied("token has no key id")
        return usable[0] if usable else None

    def _prepared_key(self, position: int, alg: str) -> Any:
        """The PyJWK for a key, bound to ``alg`` so PyJWT cannot use it otherwise; built once."""
        try:
            import jwt
            from jwt.exceptions import MissingCryptographyError
        except ImportError as missing:  # not installed, or built for another processor
            raise ValueError(f"provider tokens need PyJWT[crypto]: {missing}") from None

        cache_key = (position, alg)
        if cache_key not in self._prepared:
            try:
                self._prepared[cache_key] = jwt.PyJWK(self._keys[position], algorithm=alg)
            except MissingCryptographyError:
                # The deployment's fault, not the caller's: every token would fail.
                raise ValueError(
                    "provider tokens need the 'cryptography' package (PyJWT[crypto])"
                ) from None
            except (jwt.PyJWTError, ValueError, TypeError):
                raise AccessDenied("unusable signing key") from None
        return self._prepared[cache_key]


def _usable_keys(document: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    """The public signing keys of a JWK Set; symmetric and non-signing keys are dropped."""
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise _FetchFailed("the key set has no keys list")
    usable = tuple(
        jwk
        for jwk in keys[:MAX_KEYS]
        if isinstance(jwk, dict)
        and jwk.get("kty") in ("RSA", "EC", "OKP")
        and jwk.get("use", "sig") == "sig"
        and (jwk.get("kid") is None or isinstance(jwk.get("kid"), str))
    )
    if not usable:
        raise _FetchFailed("the key set has no public signing keys")
    return usable


def _key_suits(jwk: Mapping[str, Any], alg: str) -> bool:
    """Whether a JWK may verify ``alg`` (RFC 7517 section 4: kty, crv, use, key_ops, alg)."""
    kty, curves = KEY_SHAPE[alg]
    if jwk.get("kty") != kty:
        return False
    if curves is not None and jwk.get("crv") not in curves:
        return False
    if jwk.get("use", "sig") != "sig":
        return False
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return False
    return jwk.get("alg", alg) == alg


def check_url(url: str, what: str) -> None:
    """HTTPS, or plain HTTP to a loopback host (a local provider in development and tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise ValueError(f"the {what} must be an https:// URL (http:// only for localhost)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
