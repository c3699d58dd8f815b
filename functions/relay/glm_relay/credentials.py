"""The Zhipu API key and the short-lived JWT signed with it, both cached for the container.

The key ``{id}.{secret}`` lives in Secrets Manager, as a plain string or as JSON
``{"api_key": "..."}``. Zhipu expects ``Authorization: Bearer <jwt>`` where the JWT is HS256
signed with the secret half, carries ``sign_type: SIGN`` in its header and ``api_key``,
``timestamp`` and ``exp`` (milliseconds) in its claims. Signing costs little, but not nothing,
so one token serves every request until it is close to expiry.
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from glm_relay.errors import RelayError


class SecretSource(Protocol):
    """Where a secret string comes from; ``force`` bypasses any cache (after a rotation)."""

    async def fetch(self, *, force: bool = False) -> str: ...


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A parsed Zhipu key. The secret half never shows in ``repr``."""

    id: str
    secret: str = field(repr=False)

    @classmethod
    def parse(cls, raw: str) -> ApiKey:
        """Read ``id.secret`` from the secret string, plain or as JSON ``{"api_key": ...}``."""
        text = raw.strip()
        if text.startswith("{"):
            try:
                text = str(json.loads(text).get("api_key", "")).strip()
            except (ValueError, AttributeError):
                text = ""
        key_id, sep, secret = text.partition(".")
        if not sep or not key_id or not secret or "." in secret:
            # Say what is wrong without repeating any of the value.
            raise RelayError.of(
                "configuration_error", "the Zhipu API key secret is not of the form {id}.{secret}"
            )
        return cls(key_id, secret)


class RecentValue:
    """The last value read and when: fresh for ``max_age_seconds``.

    Secrets are read on every request (the access-token check needs its key), so a fresh value
    is answered from memory, with no thread hop or local round trip.
    """

    __slots__ = ("_clock", "_max_age", "_read_at", "_value")

    def __init__(self, max_age_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age = max_age_seconds
        self._clock = clock
        self._value: str | None = None
        self._read_at = 0.0

    def get(self) -> str | None:
        """The value if it is still fresh."""
        if self._value is not None and self._clock() - self._read_at < self._max_age:
            return self._value
        return None

    def put(self, value: str) -> str:
        self._value, self._read_at = value, self._clock()
        return value


class PowertoolsSecretSource:
    """Secrets Manager through Powertools' cached ``get_secret`` (boto3 under the hood).

    Powertools is imported on first use, not at module import, so a cold start that serves the
    demo page or rejects a bad request never pays for boto3.
    """

    def __init__(self, secret_id: str, *, max_age_seconds: int) -> None:
        self.secret_id = secret_id
        self.max_age_seconds = max_age_seconds
        self._recent = RecentValue(max_age_seconds)

    async def fetch(self, *, force: bool = False) -> str:
        if not self.secret_id:
            raise RelayError.of("configuration_error", "no secret is configured")
        value = None if force else self._recent.get()
        if value is None:
            value = self._recent.put(await asyncio.to_thread(self._fetch_blocking, force))
        return value

    def _fetch_blocking(self, force: bool) -> str:
        from aws_lambda_powertools.utilities import parameters

        try:
            value = parameters.get_secret(
                self.secret_id, max_age=self.max_age_seconds, force_fetch=force
            )
        except Exception as exc:
            # Only the error's type: its message may name the secret's ARN.
            raise RelayError.of(
                "secret_unavailable", f"the secret could not be read ({type(exc).__name__})"
            ) from None
        if isinstance(value, bytes):
            return value.decode()
        return str(value)


SECRETS_SOURCES = ("auto", "extension", "sdk")


def secret_source(
    secret_id: str,
    *,
    source: str = "auto",
    max_age_seconds: int,
    environ: Mapping[str, str] | None = None,
) -> SecretSource:
    """The source ``SECRETS_SOURCE`` names for ``secret_id``.

    ``extension``: the Parameters and Secrets Lambda Extension (no SDK; a forced read after a key
    rotation still goes through the SDK, since the extension's own cache cannot be skipped).
    ``sdk``: Powertools and boto3. ``auto``: the extension when its layer or port variable is
    present, else the SDK.
    """
    if source not in SECRETS_SOURCES:
        raise RelayError.of(
            "configuration_error", "SECRETS_SOURCE must be 'auto', 'extension' or 'sdk'"
        )
    sdk = PowertoolsSecretSource(secret_id, max_age_seconds=max_age_seconds)
    if source == "sdk":
        return sdk
    from glm_relay.secrets_extension import ExtensionSecretSource, extension_available

    if source == "auto" and not extension_available(environ):
        return sdk
    return ExtensionSecretSource(
        secret_id, max_age_seconds=max_age_seconds, fallback=sdk, environ=environ
    )


class CredentialStore:
    """Turns the stored key into an ``Authorization`` header value, caching both.

    Example:
        store = CredentialStore(PowertoolsSecretSource("zhipu/api-key", max_age_seconds=900))
        headers = {"Authorization": await store.authorization()}
        # after an upstream 401: await store.authorization(refresh=True)
    """

    def __init__(
        self,
        source: SecretSource,
        *,
        mode: str = "jwt",
        ttl_seconds: int = 3600,
        renew_before_seconds: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if mode not in {"jwt", "raw"}:
            raise RelayError.of("configuration_error", "ZHIPU_AUTH_MODE must be 'jwt' or 'raw'")
        self._source = source
        self._mode = mode
        self._ttl = ttl_seconds
        self._renew_before = min(renew_before_seconds, ttl_seconds // 2)
        self._clock = clock
        self._key: ApiKey | None = None
        self._header: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def authorization(self, *, refresh: bool = False) -> str:
        """The header value; ``refresh`` re-reads the secret (it may have rotated) and re-signs."""
        header = self._header
        if header is not None and not refresh and self._clock() < self._renew_at:
            return header
        async with self._lock:
            if refresh or self._key is None:
                self._key = ApiKey.parse(await self._source.fetch(force=refresh))
                self._header = None
            if self._header is None or refresh or self._clock() >= self._renew_at:
                self._header, self._renew_at = self._sign(self._key)
            return self._header

    def _sign(self, key: ApiKey) -> tuple[str, float]:
        now = self._clock()
        if self._mode == "raw":
            return f"Bearer {key.id}.{key.secret}", float("inf")
        import jwt

        now_ms = int(now * 1000)
        with warnings.catch_warnings():
            # Zhipu issues the secret; its length is not ours to choose.
            warnings.simplefilter("ignore")
            token = jwt.encode(
                {"api_key": key.id, "exp": now_ms + self._ttl * 1000, "timestamp": now_ms},
                key.secret,
                algorithm="HS256",
                headers={"alg": "HS256", "sign_type": "SIGN"},
            )
        return f"Bearer {token}", now + self._ttl - self._renew_before
