"""The Zhipu API keys and the short-lived JWT signed with each, all cached for the container.

The key ``{id}.{secret}`` lives in Secrets Manager, as a plain string or as JSON
``{"api_key": "..."}``, or several keys as a pool (``upstream/keys.py``). Zhipu expects
``Authorization: Bearer <jwt>`` where the JWT is HS256 signed with the secret half, carries
``sign_type: SIGN`` in its header and ``api_key``, ``timestamp`` and ``exp`` (milliseconds) in
its claims. Signing costs little, but not nothing, so one token per key serves every request
until it is close to expiry. It is signed with :mod:`glm_relay.jws` (standard library), so the
upstream never loads PyJWT.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from glm_relay.errors import ErrorCode, RelayError
from glm_relay.jws import encode_hs256
from glm_relay.secrets import SecretSource
from glm_relay.upstream.keys import ApiKey, PoolKey, parse_key_pool

if TYPE_CHECKING:
    from glm_relay.chat.sealed import ReasoningSeal

# A stored key that is not of the form {id}.{secret} is read again at most this often, so a
# container that read the placeholder before the operator stored the real key serves the very next
# request after that (a second later at most) instead of answering configuration_error until the
# cached copy ages out. Once a second bounds the extra secret reads of a misconfigured stack.
BAD_KEY_RETRY_SECONDS = 1.0


class CredentialStore:
    """Turns the stored keys into ``Authorization`` header values, caching both.

    Example:
        store = CredentialStore(secret_source("zhipu/api-key", max_age_seconds=900))
        pool = await store.keys()
        headers = {"Authorization": await store.authorization(pool[0])}
        # after an upstream 401: await store.keys(refresh=True)
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
        self._keys: tuple[PoolKey, ...] | None = None
        # fingerprint -> (header, renew at): one signed token per key.
        self._headers: dict[str, tuple[str, float]] = {}
        self._bad_key_at: float | None = None
        self._read_at = float("-inf")  # when the secret was last read
        self._lock = asyncio.Lock()

    @property
    def fresh(self) -> bool:
        """Whether :meth:`keys` answers from memory (no secret read)."""
        return self._keys is not None

    def seconds_since_read(self) -> float:
        """How long ago the secret was last read (a forced re-read is rationed by callers)."""
        return self._clock() - self._read_at

    async def keys(self, *, refresh: bool = False) -> tuple[PoolKey, ...]:
        """The pool; ``refresh`` re-reads the secret (it may have rotated)."""
        keys = self._keys
        if keys is not None and not refresh:
            return keys
        async with self._lock:
            if refresh or self._keys is None:
                self._keys = await self._read_keys(force=refresh)
                current = {k.fingerprint for k in self._keys}
                self._headers = {
                    fp: signed
                    for fp, signed in self._headers.items()
                    if fp in current and not refresh
                }
            return self._keys

    async def authorization(self, key: PoolKey | None = None, *, refresh: bool = False) -> str:
        """The header value for ``key`` (default: the pool's first); ``refresh`` re-reads the
        secret and re-signs."""
        if key is None or refresh:
            pool = await self.keys(refresh=refresh)
            key = key if key is not None and key in pool else pool[0]
        signed = self._headers.get(key.fingerprint)
        if signed is None or self._clock() >= signed[1]:
            signed = self._headers[key.fingerprint] = self._sign(key.key)
        return signed[0]

    async def derive_key(self, label: bytes) -> bytes:
        """HMAC-SHA256 of ``label`` under the secret half of the pool's first key: a key of the
        relay's own.

        The secret itself never leaves this store; a fixed label per use (``chat.sealed``'s
        ``KEY_LABEL``) keeps each derived key apart from the JWTs signed with the secret. The
        first key of the pool is every container's, so what one seals another can open.
        """
        secret = (await self.keys())[0].key.secret
        return hmac.new(secret.encode("utf-8"), label, hashlib.sha256).digest()

    async def reasoning_seal(self) -> ReasoningSeal:
        """The container's seal of reasoning handed to clients (``chat.sealed``: thinking
        signatures, Responses ``encrypted_content``), keyed from this store's first key. Imported
        here, not at the top: only the agent front ends seal, on their first request."""
        from glm_relay.chat.sealed import KEY_LABEL, seal_for_key

        return seal_for_key(await self.derive_key(KEY_LABEL))

    async def _read_keys(self, *, force: bool) -> tuple[PoolKey, ...]:
        """Parse the stored keys; an unusable secret is not trusted for long (see above)."""
        if self._bad_key_at is not None:
            force = force or self._clock() - self._bad_key_at >= BAD_KEY_RETRY_SECONDS
        self._read_at = self._clock()
        try:
            keys = parse_key_pool(await self._source.fetch(force=force))
        except RelayError as error:
            if error.code is ErrorCode.CONFIGURATION_ERROR and (force or self._bad_key_at is None):
                self._bad_key_at = self._clock()
            raise
        self._bad_key_at = None
        return keys

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
