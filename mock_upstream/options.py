"""Server-wide settings of the fake Zhipu server, shared by the CLI, `create_app` and tests."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from mock_upstream.catalogue import CATALOGUE

API_KEY_ENV = "ZHIPU_API_KEY"
# What a key can be made to suffer (`key_faults`): Zhipu's answer to every request it signs.
KEY_FAULTS = ("invalid", "balance", "rate_limit")

# Models the fake accepts unless told otherwise (the whole catalogue); others get 400 / 1211.
DEFAULT_MODELS: tuple[str, ...] = tuple(CATALOGUE)


@dataclass(frozen=True)
class MockOptions:
    """Everything the server is configured with; per-request directives override the timings.

    Times are in milliseconds except `retry_after`, which is in seconds like the HTTP header.
    `api_key` may name several accepted keys, separated by commas (an account's several keys);
    `key_faults` maps a key id to one of `KEY_FAULTS`.

    >>> MockOptions(api_key="devid.devsecret", chunk_delay_ms=5).key_id
    'devid'
    """

    api_key: str
    first_token_ms: int = 0
    chunk_delay_ms: int = 0
    max_prompt_tokens: int = 128_000
    models: tuple[str, ...] = field(default=DEFAULT_MODELS)
    slow_headers_ms: int = 30_000
    stall_ms: int = 300_000
    retry_after: int | None = None
    key_faults: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in self.api_keys:
            key_id, dot, secret = key.partition(".")
            if not dot or not key_id or not secret or "." in secret:
                raise ValueError(
                    "api_key must look like '<id>.<secret>' (several: comma-separated)"
                )
        for fault in self.key_faults.values():
            if fault not in KEY_FAULTS:
                raise ValueError(f"a key fault is one of {', '.join(KEY_FAULTS)}")
        for name in ("first_token_ms", "chunk_delay_ms", "slow_headers_ms", "stall_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.max_prompt_tokens < 1:
            raise ValueError("max_prompt_tokens must be positive")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        # Accept any iterable of names (a list from a caller, a tuple from the CLI).
        object.__setattr__(self, "models", tuple(self.models))

    @property
    def api_keys(self) -> tuple[str, ...]:
        """Every accepted key, `id.secret` each."""
        return tuple(k.strip() for k in self.api_key.split(",") if k.strip()) or (self.api_key,)

    @property
    def key_id(self) -> str:
        return self.api_keys[0].partition(".")[0]

    @property
    def key_secret(self) -> str:
        return self.api_keys[0].partition(".")[2]

    def secret_of(self, key_id: str) -> str | None:
        """The secret of the accepted key `key_id`, or None."""
        return next(
            (k.partition(".")[2] for k in self.api_keys if k.partition(".")[0] == key_id), None
        )


def api_key_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The key from `ZHIPU_API_KEY`, so the CLI and the relay can share one variable."""
    value = (os.environ if environ is None else environ).get(API_KEY_ENV, "").strip()
    return value or None
