"""The Responses API's store against a moto server: a large body split across items and read back
whole (page after page), parts written before the head, a head without its parts, delete expiring
every part, ownership, and a body over the ceiling kept as a mark that says so."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest

from glm_relay.state.responses import (
    MAX_PART_BYTES,
    MAX_STORED_BYTES,
    DynamoResponseStore,
    ResponseTooLarge,
    StoredResponse,
    pack,
)

from .fakes import FakeClock

ALICE = "user-alice"
BOB = "user-bob"
DAY = 86_400


class Recording:
    """The relay's client, noting each call's operation and item ``sk``; ``fail_on`` makes the
    write of that ``sk`` fail."""

    def __init__(self, client: Any, log: list[tuple[str, str]], fail_on: str | None) -> None:
        self._client, self._log, self._fail_on = client, log, fail_on

    async def post(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        sk = (body.get("Item") or body.get("Key") or {}).get("sk", {}).get("S", "")
        self._log.append((operation, sk))
        if sk and sk == self._fail_on:
            raise ConnectionError("the write did not reach the table")
        return await self._client.post(operation, body)


def make_store(
    table_name: str,
    client_factory: Any,
    clock: FakeClock,
    log: list[tuple[str, str]] | None = None,
    fail_on: str | None = None,
) -> DynamoResponseStore:
    def factory() -> Any:
        return Recording(client_factory(), [] if log is None else log, fail_on)

    return DynamoResponseStore(table_name, ttl_days=30, client_factory=factory, clock=clock)


@pytest.fixture
def store(table_name: str, client_factory: Any, clock: FakeClock) -> DynamoResponseStore:
    return make_store(table_name, client_factory, clock)


def record(response_id: str, random_bytes: int) -> StoredResponse:
    """A response whose conversation holds ``random_bytes`` of random data as base64 text (which
    compresses to about three quarters of its length)."""
    text = base64.b64encode(os.urandom(random_bytes)).decode()
    messages = [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]
    return StoredResponse(response_id, {"id": response_id, "output": []}, messages)


def items(dynamo: Any, table_name: str, response_id: str) -> dict[str, dict[str, Any]]:
    result = dynamo.query(
        TableName=table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"RESP#{response_id}"}},
    )
    return {item["sk"]["S"]: item for item in result["Items"]}


async def test_a_small_response_is_one_item(
    store: DynamoResponseStore, dynamo: Any, table_name: str
) -> None:
    kept = record("resp_small", 1_000)
    assert await store.put(kept.id, pack(kept), ALICE) is True

    assert list(items(dynamo, table_name, kept.id)) == ["RESPONSE"]
    assert await store.get(kept.id, ALICE) == kept


async def test_a_large_response_is_split_into_parts_written_before_the_head(
    table_name: str, client_factory: Any, clock: FakeClock, dynamo: Any
) -> None:
    log: list[tuple[str, str]] = []
    store = make_store(table_name, client_factory, clock, log)
    kept = record("resp_large", 900_000)
    body = pack(kept)
    assert len(body) > 2 * MAX_PART_BYTES

    assert await store.put(kept.id, body, ALICE) is True

    stored = items(dynamo, table_name, kept.id)
    assert sorted(stored) == ["PART#0001", "PART#0002", "PART#0003", "RESPONSE"]
    head = stored["RESPONSE"]
    assert "body" not in head and head["parts"] == {"N": "3"}
    assert head["size"] == {"N": str(len(body))}
    assert all(len(stored[f"PART#000{i}"]["body"]["B"]) <= MAX_PART_BYTES for i in (1, 2, 3))
    assert [sk for _, sk in log] == ["PART#0001", "PART#0002", "PART#0003", "RESPONSE"]
    assert await store.get(kept.id, ALICE) == kept


async def test_a_split_response_is_read_back_page_after_page(
    table_name: str, client_factory: Any, clock: FakeClock
) -> None:
    log: list[tuple[str, str]] = []
    store = make_store(table_name, client_factory, clock, log)
    store.page_limit = 1
    kept = record("resp_paged", 600_000)
    await store.put(kept.id, pack(kept), ALICE)
    log.clear()

    assert await store.get(kept.id, ALICE) == kept
    operations = [operation for operation, _ in log]
    assert set(operations) == {"Query"} and len(operations) >= 3  # a page per item: 2 parts, head


async def test_a_head_without_all_its_parts_is_not_found(
    store: DynamoResponseStore, dynamo: Any, table_name: str
) -> None:
    kept = record("resp_torn", 600_000)
    await store.put(kept.id, pack(kept), ALICE)
    dynamo.delete_item(
        TableName=table_name, Key={"pk": {"S": f"RESP#{kept.id}"}, "sk": {"S": "PART#0002"}}
    )

    assert await store.get(kept.id, ALICE) is None


async def test_a_failed_part_write_leaves_no_head_and_fails_the_put(
    table_name: str, client_factory: Any, clock: FakeClock, dynamo: Any
) -> None:
    store = make_store(table_name, client_factory, clock, fail_on="PART#0002")
    kept = record("resp_failed", 600_000)

    with pytest.raises(ConnectionError):
        await store.put(kept.id, pack(kept), ALICE)

    assert "RESPONSE" not in items(dynamo, table_name, kept.id)
    assert await store.get(kept.id, ALICE) is None


async def test_delete_expires_the_head_and_every_part(
    store: DynamoResponseStore, dynamo: Any, table_name: str, clock: FakeClock
) -> None:
    kept = record("resp_gone", 600_000)
    await store.put(kept.id, pack(kept), ALICE)
    store.page_limit = 1

    assert await store.delete(kept.id, ALICE) is True

    stored = items(dynamo, table_name, kept.id)
    assert sorted(stored) == ["PART#0001", "PART#0002", "RESPONSE"]
    for item in stored.values():
        assert item["expires_at"] == {"N": str(int(clock()))} and "body" not in item
    assert await store.get(kept.id, ALICE) is None
    assert await store.delete(kept.id, ALICE) is False


async def test_another_owner_sees_and_deletes_nothing(
    store: DynamoResponseStore, dynamo: Any, table_name: str
) -> None:
    kept = record("resp_alice", 600_000)
    await store.put(kept.id, pack(kept), ALICE)

    assert await store.get(kept.id, BOB) is None
    assert await store.delete(kept.id, BOB) is False
    assert all(
        "body" in item
        for sk, item in items(dynamo, table_name, kept.id).items()
        if sk != "RESPONSE"
    )
    assert await store.get(kept.id, ALICE) == kept


async def test_a_split_response_expires_with_its_ttl(
    store: DynamoResponseStore, clock: FakeClock
) -> None:
    kept = record("resp_old", 600_000)
    await store.put(kept.id, pack(kept), ALICE)

    clock.advance(30 * DAY)
    assert await store.get(kept.id, ALICE) is None


async def test_a_body_over_the_ceiling_keeps_a_mark_that_says_so(
    store: DynamoResponseStore, dynamo: Any, table_name: str
) -> None:
    body = os.urandom(MAX_STORED_BYTES + 1)

    assert await store.put("resp_huge", body, ALICE) is False

    (head,) = items(dynamo, table_name, "resp_huge").values()
    assert head["too_large"] == {"N": str(len(body))} and "body" not in head
    with pytest.raises(ResponseTooLarge) as refused:
        await store.get("resp_huge", ALICE)
    assert refused.value.response_id == "resp_huge" and refused.value.size == len(body)
    assert await store.get("resp_huge", BOB) is None
    assert await store.delete("resp_huge", ALICE) is True
    assert await store.get("resp_huge", ALICE) is None
