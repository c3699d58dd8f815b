"""The part every secret source shares: an in-memory copy that is fresh for ``max_age_seconds``.

Secrets are read on every request (the access-token check needs its key), so a fresh value is
answered from memory, with no thread hop or local round trip. Each source only says how to read
the value when the copy is stale or a read is forced (``_read``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from glm_relay.errors import ErrorCode, RelayError


class SecretSource(Protocol):
    """Where a secret string comes from; ``force`` bypasses any cache (after a rotation)."""

    async def fetch(self, *, force: bool = False) -> str: ...


class CachedSecretSource:
    """A secret read through ``_read`` and kept in memory while fresh.

    Example:
        class FromEnv(CachedSecretSource):
            async def _read(self, force: bool) -> str:
                return os.environ[self.secret_id]
    """

    def __init__(
        self,
        secret_id: str,
        *,
        max_age_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.secret_id = secret_id
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._value: str | None = None
        self._read_at = 0.0

    async def fetch(self, *, force: bool = False) -> str:
        """The secret: from memory while fresh, else (or when ``force``) read again."""
        if not self.secret_id:
            raise RelayError(ErrorCode.CONFIGURATION_ERROR, "no secret is configured")
        value = self._value
        if value is not None and not force and self._clock() - self._read_at < self.max_age_seconds:
            return value
        value = await self._read(force)
        self._value, self._read_at = value, self._clock()
        return value

    async def _read(self, force: bool) -> str:
        """Read the value from where it lives; ``force``: skip any cache below this one."""
        raise NotImplementedError
