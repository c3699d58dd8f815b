"""Which keys of the pool may take the next request: the container's own view, no table.

A key Zhipu refused as invalid (401, codes 1000-1004) or out of balance (1113) is *sidelined*:
no request goes to it until its cool-off is over. A key answered with a 429 is *throttled* for
its ``Retry-After``: it gets requests only while no other usable key is left. Every other key
takes requests in proportion to its weight. Each container learns this for itself; a new
container starts with every key healthy, which costs at most one refused request per dead key.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from glm_relay.upstream.keys import PoolKey

# (fingerprint, reason, cool-off seconds): told once each time a key is sidelined.
SidelinedHook = Callable[[str, str, float], None]


class KeyHealth:
    """Sidelined and throttled keys by fingerprint, each until an instant on ``clock``.

    Example:
        health = KeyHealth(cooloff_seconds=300)
        key = health.choose(pool)          # None: every key is sidelined
        health.sideline(key, "invalid")    # after a 401 on that key
    """

    def __init__(
        self,
        *,
        cooloff_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_sidelined: SidelinedHook | None = None,
    ) -> None:
        self._cooloff = cooloff_seconds
        self._clock = clock
        self._rng = rng or random.Random()
        self._on_sidelined = on_sidelined
        self._sidelined: dict[str, float] = {}
        self._throttled: dict[str, float] = {}

    def sideline(self, key: PoolKey, reason: str) -> None:
        """Take ``key`` out of service for the cool-off; told to the hook once per sidelining."""
        now = self._clock()
        already = self._sidelined.get(key.fingerprint, 0.0) > now
        self._sidelined[key.fingerprint] = now + self._cooloff
        if not already and self._on_sidelined is not None:
            self._on_sidelined(key.fingerprint, reason, self._cooloff)

    def throttle(self, key: PoolKey, seconds: float) -> None:
        """Send ``key`` nothing for ``seconds`` while another key can take the request."""
        until = self._clock() + seconds
        self._throttled[key.fingerprint] = max(until, self._throttled.get(key.fingerprint, 0.0))

    def is_sidelined(self, key: PoolKey) -> bool:
        return self._sidelined.get(key.fingerprint, 0.0) > self._clock()

    def is_throttled(self, key: PoolKey) -> bool:
        return self._throttled.get(key.fingerprint, 0.0) > self._clock()

    def usable(self, keys: Sequence[PoolKey], exclude: Collection[str] = ()) -> list[PoolKey]:
        """The keys not sidelined nor in ``exclude``, throttled ones only when nothing else is."""
        open_keys = [k for k in keys if k.fingerprint not in exclude and not self.is_sidelined(k)]
        unthrottled = [k for k in open_keys if not self.is_throttled(k)]
        return unthrottled or open_keys

    def choose(self, keys: Sequence[PoolKey], exclude: Collection[str] = ()) -> PoolKey | None:
        """A usable key, drawn by weight; ``None`` when every key is sidelined or excluded."""
        usable = self.usable(keys, exclude)
        if not usable:
            return None
        if len(usable) == 1:
            return usable[0]
        return self._rng.choices(usable, weights=[k.weight for k in usable])[0]

    def retry_after(self, keys: Sequence[PoolKey]) -> float:
        """Seconds until the first of ``keys`` leaves its cool-off."""
        now = self._clock()
        ends = [self._sidelined.get(k.fingerprint, now) for k in keys]
        return max(0.0, min(ends, default=now) - now)

    def sidelined_count(self, keys: Sequence[PoolKey]) -> int:
        """How many of ``keys`` are sidelined now (a metric)."""
        return sum(1 for k in keys if self.is_sidelined(k))
