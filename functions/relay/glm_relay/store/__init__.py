"""DynamoDB-backed state: conversations (context for follow-ups) and per-user daily quotas.

Both live in one on-demand table (name from ``CONVERSATIONS_TABLE``): partition key ``pk`` (S),
sort key ``sk`` (S), TTL attribute ``expires_at`` (epoch seconds).

- ``pk=CONV#<id>, sk=META``: owner, created_at, updated_at, turn_count, expires_at
  (sliding: ``ttl_days`` after the last turn).
- ``pk=CONV#<id>, sk=TURN#<00000001>``: question, answer, status, model, created_at, expires_at
  and, when known, finish_reason, error_code, usage (JSON text), truncated.
- ``pk=QUOTA#<sub>, sk=DAY#<YYYY-MM-DD>``: requests, tokens_used, expires_at (two days after the
  UTC day ends).

Every access is by key or by one partition's query; there is no scan and no index.
Importing this package does not import boto3: the client is built on first use.
"""

from glm_relay.store.conversations import (
    ConversationForbidden,
    ConversationNotFound,
    ConversationStore,
)
from glm_relay.store.quotas import QuotaDecision, QuotaLimits, QuotaStore

__all__ = [
    "ConversationForbidden",
    "ConversationNotFound",
    "ConversationStore",
    "QuotaDecision",
    "QuotaLimits",
    "QuotaStore",
]
