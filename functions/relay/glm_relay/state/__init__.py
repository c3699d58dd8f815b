"""DynamoDB-backed state: conversations (context for follow-ups) and per-user daily quotas.

Both live in one on-demand table (name from ``CONVERSATIONS_TABLE``): partition key ``pk`` (S),
sort key ``sk`` (S), TTL attribute ``expires_at`` (epoch seconds).

- ``pk=CONV#<id>, sk=META``: owner, created_at, updated_at, turn_count, expires_at
  (sliding: ``ttl_days`` after the last turn).
- ``pk=CONV#<id>, sk=TURN#<00000001>``: question, answer, status, model, created_at, expires_at
  and, when known, finish_reason, error_code, usage (JSON text), truncated.
- ``pk=QUOTA#<sub>, sk=DAY#<YYYY-MM-DD>``: requests, tokens_used, expires_at (two days after the
  UTC day ends).
- ``pk=RESP#<response id>, sk=RESPONSE``: a stored Responses API response (see
  ``responses.py``): owner, created_at, expires_at, and body (compressed JSON) or, for a large
  one, parts and size, with ``sk=PART#<0001>`` items each holding a slice of the body.
- ``pk=STREAM#<request-id>, sk=F#<00000001>``: a batch of a resumable stream's frames (see
  ``journal.py``), owner, route, expires_at; ``sk=F#~lost`` marks a record given up.

Every access is by key or by one partition's query; there is no scan and no index.
Importing this package imports neither boto3 nor the stores: each is loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from glm_relay.state.ledger import UserState

# The stores are imported when first named, so building a ``UserState`` at cold start (with
# state switched off, or before its first use) costs no store module.
_LAZY = {
    "ConversationForbidden": "glm_relay.state.conversations",
    "ConversationNotFound": "glm_relay.state.conversations",
    "ConversationStore": "glm_relay.state.conversations",
    "QuotaDecision": "glm_relay.state.quotas",
    "QuotaLimits": "glm_relay.state.quotas",
    "QuotaStore": "glm_relay.state.quotas",
    "ResponseStore": "glm_relay.state.responses",
    "StoredResponse": "glm_relay.state.responses",
}

__all__ = ["UserState", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
