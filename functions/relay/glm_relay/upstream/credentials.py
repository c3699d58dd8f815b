"""The Zhipu API key and the short-lived JWT signed with it, both cached for the container.

The key ``{id}.{secret}`` lives in Secrets Manager, as a plain string or as JSON
``{"api_key": "..."}``. Zhipu expects ``Authorization: Bearer <jwt>`` where the JWT is HS256
signed with the secret half, carries ``sign_type: SIGN`` in its header and ``api_key``,
``timestamp`` and ``exp`` (milliseconds) in its claims. Signing costs little, but not nothing,
so one token serves every request until it is close to expiry. It is signed with
:mod:`glm_relay.jws` (standard library), so the upstream never loads PyJWT.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from glm_relay.errors import ErrorCode, RelayError
from glm_relay.jws import encode_hs256
from glm_relay.secrets import SecretSource

# A stored key that is not of the form {id}.{secret} is read again at most this often, so a
# container that read the placeholder before the operator stored the real key serves the very next
# request after that (a second later at most) instead of answering configuration_error until the
# cached copy ages out. Once a second bounds the extra secret reads of a misconfigured stack.
BAD_KEY_RETRY_SECONDS = 1.0


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
            raise RelayError(
                ErrorCode.CONFIGURATION_ERROR,
                "the Zhipu API key secret is not of the form {id}.{secret}",
            )
        return cls(key_id, secret)


class CredentialStore:
    """Turns the stored key into an ``Authorization`` header value, caching both.

    Example:
        store = CredentialStore(secret_source("zhipu/api-key", max_age_seconds=900))
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
            raise RelayError(
                ErrorCode.CONFIGURATION_ERROR, "ZHIPU_AUTH_MODE must be 'jwt' or 'raw'"
            )
        self._source = source
        self._mode = mode
        self._ttl = ttl_seconds
        self._renew_before = min(renew_before_seconds, ttl_seconds // 2)
        self._clock = clock
        self._key: ApiKey | None = None
        self._header: str | None = None
        self._renew_at = 0.0
        self._bad_key_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def fresh(self) -> bool:
        """Whether :meth:`authorization` answers from memory (no secret read, no signing)."""
        return self._header is not None and self._clock() < self._renew_at

    async def authorization(self, *, refresh: bool = False) -> str:
        """The header value; ``refresh`` re-reads the secret (it may have rotated) and re-signs."""
        header = self._header
        if header is not None and not refresh and self._clock() < self._renew_at:
            return header
        async with self._lock:
            if refresh or self._key is None:
                self._key = await self._read_key(force=refresh)
                self._header = None
            if self._header is None or refresh or self._clock() >= self._renew_at:
                self._header, self._renew_at = self._sign(self._key)
            return self._header

    async def derive_key(self, label: bytes) -> bytes:
        """HMAC-SHA256 of ``label`` under the key's secret half: a key of the relay's own.

        The secret itself never leaves this store; a fixed label per use (``chat.sealed``'s
        ``KEY_LABEL``) keeps each derived key apart from the JWTs signed with the secret.
        """
        async with self._lock:
            if self._key is None:
                self._key = await self._read_key(force=False)
            secret = self._key.secret
        return hmac.new(secret.encode("utf-8"), label, hashlib.sha256).digest()

    async def _read_key(self, *, force: bool) -> ApiKey:
        """Parse the stored key; an unusable one is not trusted for long (see above)."""
        if self._bad_key_at is not None:
            force = force or self._clock() - self._bad_key_at >= BAD_KEY_RETRY_SECONDS
        try:
            key = ApiKey.parse(await self._source.fetch(force=force))
        except RelayError as error:
            if error.code is ErrorCode.CONFIGURATION_ERROR and (force or self._bad_key_at is None):
                self._bad_key_at = self._clock()
            raise
        self._bad_key_at = None
        return key

    def _sign(self, key: ApiKey) -> tuple[str, float]:
        now = self._clock()
        if self._mode == "raw":
            return f"Bearer {key.id}.{key.secret}", float("inf")
        now_ms = int(now * 1000)
        # Zhipu issues the secret, so no length rule applies to it here.
        token = encode_hs256(
            {"api_key": key.id, "exp": now_ms + self._ttl * 1000, "timestamp": now_ms},
            key.secret,
            headers={"sign_type": "SIGN"},
        )
        return f"Bearer {token}", now + self._ttl - self._renew_before
