"""Stored responses of the Responses API: ``previous_response_id``, ``GET`` and ``DELETE``.

One item per response in the shared table (see ``glm_relay.state``):

- ``pk=RESP#<response id>, sk=RESPONSE``: ``owner`` (token ``sub``), ``created_at``,
  ``expires_at`` (``ttl_days`` after it was written) and ``body``: zlib-compressed JSON holding
  the public Response object and the conversation a follow-up continues (every message but the
  request's ``instructions``, then the answer's assistant turn with its reasoning).

Only the owner reads or deletes a response; for anyone else it does not exist. Deleting expires
the item at once and removes its body (DynamoDB's TTL sweep removes the rest). A body over
``MAX_BODY_BYTES`` compressed is not kept (DynamoDB items stop at 400 KB); ``put`` says so.

Example:
    store = DynamoResponseStore("glm-relay-state")
    await store.put(StoredResponse("resp_1", response, messages), owner="alice")
    await store.get("resp_1", "alice")  # StoredResponse(...); None for "bob"
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import dataclass
from typing import Any, Protocol

from glm_relay.state.dynamo import (
    ConditionFailed,
    ExpiringItems,
    get_n,
    get_s,
    key,
    n,
    s,
)

RESPONSE_PREFIX = "RESP#"
RESPONSE_SK = "RESPONSE"
MAX_BODY_BYTES = 350_000
_ID = re.compile(r"resp_[A-Za-z0-9_-]{1,80}")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response as kept: its public object and the conversation up to and including it."""

    id: str
    response: dict[str, Any]
    messages: list[dict[str, Any]]


class ResponseStore(Protocol):
    """Where responses are kept, per owner."""

    async def put(self, record: StoredResponse, owner: str) -> bool:
        """Keep ``record``; ``False`` when it is too large to keep."""

    async def get(self, response_id: str, owner: str) -> StoredResponse | None:
        """The owner's response, or ``None`` (unknown, expired, malformed id, someone else's)."""

    async def delete(self, response_id: str, owner: str) -> bool:
        """Delete the owner's response; ``False`` when there was none to delete."""


def response_key(response_id: str) -> dict[str, dict[str, str]]:
    return key(f"{RESPONSE_PREFIX}{response_id}", RESPONSE_SK)


class DynamoResponseStore(ExpiringItems):
    """:class:`ResponseStore` in the shared DynamoDB table."""

    async def put(self, record: StoredResponse, owner: str) -> bool:
        data = {"response": record.response, "messages": record.messages}
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        body = zlib.compress(text.encode("utf-8"), 6)
        if len(body) > MAX_BODY_BYTES:
            return False
        now = int(self._clock())
        await self._table.call(
            "put_item",
            Item={
                **response_key(record.id),
                **self._owned(owner, now),
                "body": {"B": base64.b64encode(body).decode("ascii")},
            },
        )
        return True

    async def get(self, response_id: str, owner: str) -> StoredResponse | None:
        if not _ID.fullmatch(response_id):
            return None
        result = await self._table.call(
            "get_item", Key=response_key(response_id), ConsistentRead=True
        )
        item = result.get("Item")
        if item is None or get_s(item, "owner") != owner:
            return None
        if get_n(item, "expires_at") <= int(self._clock()):
            return None
        data = json.loads(zlib.decompress(base64.b64decode(item["body"]["B"])))
        return StoredResponse(response_id, data["response"], data["messages"])

    async def delete(self, response_id: str, owner: str) -> bool:
        """Expire the item now and drop its body: the function has no ``DeleteItem`` right
        (items leave through the TTL), and reads skip expired items."""
        if not _ID.fullmatch(response_id):
            return False
        now = int(self._clock())
        try:
            await self._table.call(
                "update_item",
                Key=response_key(response_id),
                UpdateExpression="SET expires_at = :now REMOVE body",
                ConditionExpression="#owner = :owner AND expires_at > :now",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": s(owner), ":now": n(now)},
            )
        except ConditionFailed:
            return False
        return True
