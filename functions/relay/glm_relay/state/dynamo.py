"""Shared DynamoDB plumbing: one lazily built low-level client, key layout, attribute codecs.

boto3 is imported on first use, never at import time: a cold start that never touches the table
(the demo page, a rejected token) must not pay for loading it. Blocking client calls run in a
worker thread so the event loop keeps streaming other frames meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

ClientFactory = Callable[[], Any]
"""Returns a ``boto3`` DynamoDB client (or anything with the same methods)."""

Item = dict[str, dict[str, Any]]
"""An item in the low-level wire shape: ``{"name": {"S": "value"}}``."""

CONVERSATION_PREFIX = "CONV#"
META_SK = "META"
TURN_PREFIX = "TURN#"
QUOTA_PREFIX = "QUOTA#"
DAY_PREFIX = "DAY#"
STREAM_PREFIX = "STREAM#"
FRAMES_PREFIX = "F#"
DAY_SECONDS = 86_400

_CONDITION_FAILED = "ConditionalCheckFailedException"

_default_lock = threading.Lock()
_default_client: Any = None


def default_client() -> Any:
    """The process-wide DynamoDB client, built once on first call.

    Region, credentials and ``AWS_ENDPOINT_URL_DYNAMODB`` (moto locally) come from the environment
    through botocore. Short timeouts: a slow table must not eat the stream's time budget.
    """
    global _default_client
    if _default_client is None:
        with _default_lock:
            if _default_client is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    connect_timeout=2,
                    read_timeout=5,
                    retries={"mode": "standard", "max_attempts": 3},
                    max_pool_connections=50,
                )
                _default_client = boto3.session.Session().client("dynamodb", config=config)
    return _default_client


class ConditionFailed(Exception):
    """A conditional write was refused; ``item`` is the stored item when DynamoDB returned it."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("conditional check failed")
        self.item = item


class Table:
    """One table reached through a client that is created on first use and then reused."""

    def __init__(self, name: str, client_factory: ClientFactory | None = None) -> None:
        if not name:
            raise ValueError("table name is empty")
        self.name = name
        self._factory = client_factory or default_client
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        """The client, created once (in whichever worker thread asks first)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
        return self._client

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Run one client operation off the event loop, with ``TableName`` filled in.

        A failed condition becomes :class:`ConditionFailed`; every other error propagates as is.
        """
        return await asyncio.to_thread(self._call, operation, params)

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        method = getattr(self.client(), operation)
        try:
            result: dict[str, Any] = method(TableName=self.name, **params)
        except Exception as exc:
            response = getattr(exc, "response", None)
            if isinstance(response, dict) and response.get("Error", {}).get("Code") == (
                _CONDITION_FAILED
            ):
                raise ConditionFailed(response.get("Item")) from exc
            raise
        return result


def key(pk: str, sk: str) -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def conversation_pk(conversation_id: str) -> str:
    return f"{CONVERSATION_PREFIX}{conversation_id}"


def turn_sk(number: int) -> str:
    """Zero-padded so that string order on ``sk`` is turn order."""
    return f"{TURN_PREFIX}{number:08d}"


def quota_key(sub: str, day: str) -> Item:
    return key(f"{QUOTA_PREFIX}{sub}", f"{DAY_PREFIX}{day}")


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def get_s(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None or "S" not in value else str(value["S"])


def get_n(item: Item, name: str) -> int:
    """A number attribute as int; absent counts as 0 (a counter nobody has bumped yet)."""
    value = item.get(name)
    return 0 if value is None or "N" not in value else int(value["N"])


def utc_day(epoch: float) -> str:
    """``YYYY-MM-DD`` of the UTC day containing ``epoch``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def next_utc_midnight(epoch: float) -> int:
    """Epoch seconds of the first UTC midnight strictly after ``epoch``."""
    day = datetime.fromtimestamp(epoch, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((day + timedelta(days=1)).timestamp())
