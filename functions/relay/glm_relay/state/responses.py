"""Stored responses of the Responses API: ``previous_response_id``, ``GET`` and ``DELETE``.

A response's body is zlib-compressed JSON holding the public Response object and the conversation
a follow-up continues (every message but the request's ``instructions``, then the answer's
assistant turn with its reasoning). It lives in one partition of the shared table (see
``glm_relay.state``), every item with ``owner`` (token ``sub``), ``created_at`` and ``expires_at``
(``ttl_days`` after it was written):

- ``pk=RESP#<response id>, sk=RESPONSE``: the head. A body up to ``MAX_PART_BYTES`` sits in its
  ``body``; a larger one (DynamoDB items stop at 400 KB) is split into ``parts`` items of
  ``MAX_PART_BYTES`` each and the head holds their count and the body's ``size``.
- ``pk=RESP#<response id>, sk=PART#0001`` ...: one slice of a split body each.

Parts are written before the head, so a reader never sees a head without its parts; one Query on
the partition (page after page) reads it all back. A head whose parts are not all there reads as
not found. A body over ``MAX_STORED_BYTES`` (more than any request the relay accepts produces) is
not kept: the head then says ``too_large`` and reading it raises :class:`ResponseTooLarge`, so a
follow-up learns why rather than meeting a 404.

Only the owner reads or deletes a response; for anyone else it does not exist. Deleting expires
the head, then each part, at once and removes their bodies (the function has no ``DeleteItem``
right: DynamoDB's TTL sweep removes the rest).

Example:
    store = DynamoResponseStore("glm-relay-state")
    await store.put("resp_1", pack(StoredResponse("resp_1", response, messages)), "alice")
    await store.get("resp_1", "alice")  # StoredResponse(...); None for "bob"
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from glm_relay.state.dynamo import (
    ConditionFailed,
    ExpiringItems,
    Item,
    get_n,
    get_s,
    key,
    n,
    s,
)

RESPONSE_PREFIX = "RESP#"
RESPONSE_SK = "RESPONSE"
PART_PREFIX = "PART#"
MAX_PART_BYTES = 350_000
"""The most compressed bytes one item holds (DynamoDB items stop at 400 KB, keys included)."""
MAX_STORED_BYTES = 6_000_000
"""The largest compressed body kept (in ``MAX_PART_BYTES`` parts); a larger one is refused."""
_ID = re.compile(r"resp_[A-Za-z0-9_-]{1,80}")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response as kept: its public object and the conversation up to and including it."""

    id: str
    response: dict[str, Any]
    messages: list[dict[str, Any]]


class ResponseTooLarge(Exception):
    """The owner's response exists but its body was over ``MAX_STORED_BYTES`` and was not kept."""

    def __init__(self, response_id: str, size: int) -> None:
        super().__init__(f"response {response_id} was too large to store ({size} bytes)")
        self.response_id = response_id
        self.size = size


class ResponseStore(Protocol):
    """Where responses are kept, per owner."""

    async def put(self, response_id: str, body: bytes, owner: str) -> bool:
        """Keep ``body`` (from :func:`pack`); ``False`` when it is over ``MAX_STORED_BYTES`` and
        only a mark saying so is kept."""

    async def get(self, response_id: str, owner: str) -> StoredResponse | None:
        """The owner's response, or ``None`` (unknown, expired, malformed id, someone else's);
        :class:`ResponseTooLarge` when it was not kept for its size."""

    async def delete(self, response_id: str, owner: str) -> bool:
        """Delete the owner's response; ``False`` when there was none to delete."""


def pack(record: StoredResponse) -> bytes:
    """The compressed body a response is kept as."""
    data = {"response": record.response, "messages": record.messages}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return zlib.compress(text.encode("utf-8"), 6)


def too_large(body: bytes) -> bool:
    """Whether ``body`` is over ``MAX_STORED_BYTES``: then only a mark saying so is kept."""
    return len(body) > MAX_STORED_BYTES


def response_pk(response_id: str) -> str:
    return f"{RESPONSE_PREFIX}{response_id}"


def response_key(response_id: str) -> dict[str, dict[str, str]]:
    return key(response_pk(response_id), RESPONSE_SK)


def part_sk(number: int) -> str:
    """Zero-padded so that string order on ``sk`` is part order."""
    return f"{PART_PREFIX}{number:04d}"


class DynamoResponseStore(ExpiringItems):
    """:class:`ResponseStore` in the shared DynamoDB table."""

    page_limit: int | None = None
    """Items per Query page (``None``: DynamoDB's own 1 MB pages)."""

    async def put(self, response_id: str, body: bytes, owner: str) -> bool:
        owned = self._owned(owner, int(self._clock()))
        head: Item = {**response_key(response_id), **owned}
        if too_large(body):
            await self._table.call("put_item", Item={**head, "too_large": n(len(body))})
            return False
        if len(body) <= MAX_PART_BYTES:
            await self._table.call("put_item", Item={**head, "body": _binary(body)})
            return True
        slices = [body[i : i + MAX_PART_BYTES] for i in range(0, len(body), MAX_PART_BYTES)]
        pk = response_pk(response_id)
        await asyncio.gather(
            *(
                self._table.call(
                    "put_item", Item={**key(pk, part_sk(i)), **owned, "body": _binary(part)}
                )
                for i, part in enumerate(slices, start=1)
            )
        )
        parts = {"parts": n(len(slices)), "size": n(len(body))}
        await self._table.call("put_item", Item={**head, **parts})
        return True

    async def get(self, response_id: str, owner: str) -> StoredResponse | None:
        if not _ID.fullmatch(response_id):
            return None
        items = {get_s(item, "sk"): item async for item in self._partition(response_id)}
        head = items.get(RESPONSE_SK)
        now = int(self._clock())
        if head is None or get_s(head, "owner") != owner or get_n(head, "expires_at") <= now:
            return None
        if "too_large" in head:
            raise ResponseTooLarge(response_id, get_n(head, "too_large"))
        if "body" in head:
            body = _bytes(head)
        else:
            slices = [items.get(part_sk(i)) for i in range(1, get_n(head, "parts") + 1)]
            if not slices or any(p is None or get_s(p, "owner") != owner for p in slices):
                return None
            body = b"".join(_bytes(p) for p in slices if p is not None)
            if len(body) != get_n(head, "size"):
                return None
        data = json.loads(zlib.decompress(body))
        return StoredResponse(response_id, data["response"], data["messages"])

    async def delete(self, response_id: str, owner: str) -> bool:
        """Expire the head now, then its parts, and drop their bodies: the function has no
        ``DeleteItem`` right (items leave through the TTL), and reads skip an expired head."""
        if not _ID.fullmatch(response_id):
            return False
        now = int(self._clock())
        try:
            await self._expire(response_key(response_id), owner, now)
        except ConditionFailed:
            return False
        pk = response_pk(response_id)
        async for part in self._partition(response_id, parts_only=True):
            sk = get_s(part, "sk") or ""
            # a part already gone (the TTL sweep) or expired by an earlier delete stays so
            with contextlib.suppress(ConditionFailed):
                await self._expire(key(pk, sk), owner, now)
        return True

    async def _expire(self, item_key: Item, owner: str, now: int) -> None:
        await self._table.call(
            "update_item",
            Key=item_key,
            UpdateExpression="SET expires_at = :now REMOVE body",
            ConditionExpression="#owner = :owner AND expires_at > :now",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":owner": s(owner), ":now": n(now)},
        )

    async def _partition(
        self, response_id: str, *, parts_only: bool = False
    ) -> AsyncIterator[Item]:
        """The response's items (head and parts, or the parts' keys only), page after page."""
        condition = "pk = :pk"
        values: Item = {":pk": s(response_pk(response_id))}
        params: dict[str, Any] = {"ConsistentRead": True}
        if parts_only:
            condition += " AND begins_with(sk, :part)"
            values[":part"] = s(PART_PREFIX)
            params["ProjectionExpression"] = "pk, sk"
        if self.page_limit is not None:
            params["Limit"] = self.page_limit
        params.update(KeyConditionExpression=condition, ExpressionAttributeValues=values)
        while True:
            page = await self._table.call("query", **params)
            for item in page.get("Items", []):
                yield item
            start = page.get("LastEvaluatedKey")
            if not start:
                return
            params["ExclusiveStartKey"] = start


def _binary(data: bytes) -> dict[str, str]:
    return {"B": base64.b64encode(data).decode("ascii")}


def _bytes(item: Item) -> bytes:
    return base64.b64decode(item["body"]["B"])
