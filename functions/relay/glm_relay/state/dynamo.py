"""Shared DynamoDB plumbing: one lazily built client, the table handle, key layout, codecs.

The client (``dynamo_client.DynamoClient``: httpx and AWS's standalone SigV4 signer) is built on
first use, never at import time, and shared by both stores: a cold start that never touches the
table (the demo page, a rejected token) pays for none of it. Calls are plain coroutines on the
event loop, with no worker thread in between.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from glm_relay.state.dynamo_client import (
    OPERATIONS,
    ConditionFailed,
    DynamoClient,
    DynamoError,
    Item,
    endpoint_from,
    region_from,
)
from glm_relay.tls import client_context

__all__ = [
    "ClientFactory",
    "ConditionFailed",
    "DynamoError",
    "ExpiringItems",
    "Item",
    "Table",
    "default_client",
]

ClientFactory = Callable[[], DynamoClient]
"""Returns the :class:`DynamoClient` a table sends its calls through."""

CONVERSATION_PREFIX = "CONV#"
META_SK = "META"
TURN_PREFIX = "TURN#"
QUOTA_PREFIX = "QUOTA#"
DAY_PREFIX = "DAY#"
STREAM_PREFIX = "STREAM#"
FRAMES_PREFIX = "F#"
DAY_SECONDS = 86_400

_default_clients: dict[tuple[object, ...], DynamoClient] = {}


def default_client(verify: ssl.SSLContext | None = None) -> DynamoClient:
    """The container's client, built on first call and then shared by every table.

    Region, credentials and ``AWS_ENDPOINT_URL_DYNAMODB`` (moto locally) come from the
    environment; ``verify`` is the container's shared SSL context (default: the system's
    authorities, ``glm_relay.tls.client_context()``). Short timeouts: a slow table
    must not eat the stream's time budget. One client per endpoint and event loop: in Lambda that
    is one, while a process that runs several stacks one after another (tests) gets a client for
    each rather than one bound to a stopped server or a closed loop.
    """
    region = region_from(os.environ)
    verify = verify or client_context()
    try:
        loop: object = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    key = (endpoint_from(os.environ, region), region, id(verify), id(loop))
    client = _default_clients.get(key)
    if client is None:
        client = DynamoClient(verify=verify, connect_timeout=2.0, read_timeout=5.0)
        _default_clients[key] = client
    return client


class Table:
    """One table reached through a client that is created on first use and then reused.

    :meth:`call` takes boto3's operation names and parameters (``"update_item"``, ``Key=...``),
    which are DynamoDB's own JSON request fields, and fills in ``TableName``.
    """

    def __init__(self, name: str, client_factory: ClientFactory | None = None) -> None:
        if not name:
            raise ValueError("table name is empty")
        self.name = name
        self._factory = client_factory or default_client
        self._client: DynamoClient | None = None

    def client(self) -> DynamoClient:
        """The client, created once."""
        if self._client is None:
            self._client = self._factory()
        return self._client

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Run one operation; a failed condition raises :class:`ConditionFailed` (with ``item``
        when the request asked for it), every other error propagates as the client raised it."""
        wire = OPERATIONS.get(operation, operation)
        return await self.client().post(wire, {"TableName": self.name, **params})


class ExpiringItems:
    """The base of a store whose items expire ``ttl_days`` after they are written (DynamoDB's
    TTL sweep reads ``expires_at``); ``clock`` gives the time in epoch seconds."""

    def __init__(
        self,
        table_name: str,
        *,
        ttl_days: int = 30,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl_days <= 0:
            raise ValueError("ttl_days must be positive")
        self._table = Table(table_name, client_factory)
        self._ttl = ttl_days * DAY_SECONDS
        self._clock = clock

    def _owned(self, owner: str, now: int) -> Item:
        """What every item of an owner starts with: who, when it was written, when it expires."""
        return {"owner": s(owner), "created_at": n(now), "expires_at": n(now + self._ttl)}


class DayStore:
    """A store of per-day counters on one table; ``clock`` says which UTC day it is."""

    def __init__(
        self,
        table_name: str,
        *,
        clock: Callable[[], float] = time.time,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self._table = Table(table_name, client_factory)
        self._clock = clock


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


# A reservation is tagged by its id in the item's ``pending`` string set, so that it is made,
# and closed (settled or released), at most once each: the quota's and the spend budgets' alike.
PENDING_NAMES = {"#pending": "pending"}
NOT_YET_PENDING = "(attribute_not_exists(#pending) OR NOT contains(#pending, :id))"
STILL_PENDING = "contains(#pending, :id)"


def reservation_values(reservation: str) -> dict[str, dict[str, Any]]:
    """``:ids`` (the set to ``ADD`` or ``DELETE``) and ``:id`` (for the conditions)."""
    return {":ids": {"SS": [reservation]}, ":id": s(reservation)}


def pending_ids(item: Item) -> list[str]:
    """The reservation ids ``item`` still holds open."""
    pending = item.get("pending") or {}
    return list(pending.get("SS", []))


def utc_day(epoch: float) -> str:
    """``YYYY-MM-DD`` of the UTC day containing ``epoch``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def next_utc_midnight(epoch: float) -> int:
    """Epoch seconds of the first UTC midnight strictly after ``epoch``."""
    day = datetime.fromtimestamp(epoch, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((day + timedelta(days=1)).timestamp())
