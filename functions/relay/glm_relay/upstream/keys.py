"""The Zhipu secret: one key, or a pool of keys each with its own base URL, weight and models.

What the secret may hold (the README's "Run it for a team" shows it too):

* ``id.secret``, or JSON ``{"api_key": "id.secret"}``: one key, on ``ZHIPU_BASE_URL``;
* JSON ``{"keys": [entry, ...]}`` (or the bare list), where an entry is ``"id.secret"`` or
  ``{"api_key": "id.secret", "base_url": "https://...", "weight": 2, "models": ["glm-4.7"]}``:
  ``base_url`` defaults to ``ZHIPU_BASE_URL``, ``weight`` (a share of the traffic) to 1, and
  ``models`` to every model.

A key is named in logs and metrics by its fingerprint, never by any part of its value.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from glm_relay.errors import ErrorCode, RelayError

_ENTRY_FIELDS = frozenset({"api_key", "base_url", "weight", "models"})


def _bad(message: str) -> RelayError:
    # Say what is wrong without repeating any of the value.
    return RelayError(ErrorCode.CONFIGURATION_ERROR, "the Zhipu API key secret " + message)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A parsed Zhipu key. The secret half never shows in ``repr``."""

    id: str
    secret: str = field(repr=False)

    @classmethod
    def parse(cls, raw: str) -> ApiKey:
        """Read ``id.secret`` from the secret string, plain or as JSON ``{"api_key": ...}``."""
        keys = parse_key_pool(raw)
        if len(keys) != 1:
            raise _bad("holds several keys where one is expected")
        return keys[0].key

    @classmethod
    def of(cls, text: str) -> ApiKey:
        """One ``id.secret`` string."""
        key_id, sep, secret = text.strip().partition(".")
        if not sep or not key_id or not secret or "." in secret:
            raise _bad("is not of the form {id}.{secret}")
        return cls(key_id, secret)

    @property
    def fingerprint(self) -> str:
        """A stable name for logs: the first 12 hex digits of the key's SHA-256."""
        digest = hashlib.sha256(f"{self.id}.{self.secret}".encode()).hexdigest()
        return "key-" + digest[:12]


@dataclass(frozen=True, slots=True)
class PoolKey:
    """One key of the pool and where, how much and for what it is used."""

    key: ApiKey
    base_url: str = ""  # empty: the deployment's ZHIPU_BASE_URL
    weight: float = 1.0
    models: tuple[str, ...] = ()  # empty: every model

    @property
    def fingerprint(self) -> str:
        return self.key.fingerprint

    def serves(self, model: str) -> bool:
        return not self.models or model in self.models


def parse_key_pool(raw: str) -> tuple[PoolKey, ...]:
    """Every key the secret holds, in its order (see the module's docstring for the format)."""
    text = raw.strip()
    if not text.startswith(("{", "[")):
        return (PoolKey(ApiKey.of(text)),)
    try:
        value = json.loads(text)
    except ValueError:
        raise _bad("is not valid JSON") from None
    if isinstance(value, dict) and "keys" not in value:
        if not isinstance(value.get("api_key"), str):
            raise _bad('needs "api_key" or "keys"')
        return (PoolKey(ApiKey.of(value["api_key"])),)
    entries = value.get("keys") if isinstance(value, dict) else value
    if not isinstance(entries, list) or not entries:
        raise _bad('needs "keys": a non-empty list')
    return tuple(_entry(item, index) for index, item in enumerate(entries))


def _entry(item: Any, index: int) -> PoolKey:
    if isinstance(item, str):
        return PoolKey(ApiKey.of(item))
    where = f"entry {index}"
    if not isinstance(item, dict) or not isinstance(item.get("api_key"), str):
        raise _bad(f'{where} needs "api_key"')
    unknown = sorted(set(item) - _ENTRY_FIELDS)
    if unknown:
        raise _bad(f"{where} has unknown fields: {', '.join(unknown)}")
    base_url = item.get("base_url") or ""
    if not isinstance(base_url, str) or (
        base_url and not base_url.startswith(("https://", "http://"))
    ):
        raise _bad(f"{where} has a base_url that is not an http(s) URL")
    weight = item.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
        raise _bad(f"{where} has a weight that is not a positive number")
    models = item.get("models") or []
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise _bad(f"{where} has models that are not a list of names")
    return PoolKey(ApiKey.of(item["api_key"]), base_url.rstrip("/"), float(weight), tuple(models))
