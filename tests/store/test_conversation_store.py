"""ConversationStore against a moto server: ordering, prompt budget, statuses, ownership, TTL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from glm_relay.state import ConversationForbidden, ConversationNotFound, ConversationStore
from glm_relay.state.conversations import MAX_TEXT_BYTES

from .fakes import FakeClock

ALICE = "user-alice"
BOB = "user-bob"
DAY = 86_400


@pytest.fixture
def store(table_name: str, client_factory: Any, clock: FakeClock) -> ConversationStore:
    return ConversationStore(table_name, ttl_days=30, client_factory=client_factory, clock=clock)


async def add(
    store: ConversationStore,
    conversation_id: str,
    question: str,
    answer: str,
    status: str = "complete",
    **extra: Any,
) -> None:
    fields: dict[str, Any] = {"usage": None, "model": "glm-4-flash", "finish_reason": "stop"}
    fields.update(extra)
    await store.append_turn(
        conversation_id, ALICE, question=question, answer=answer, status=status, **fields
    )


def items(dynamo: Any, table_name: str, conversation_id: str) -> list[dict[str, Any]]:
    result = dynamo.query(
        TableName=table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"CONV#{conversation_id}"}},
    )
    return list(result["Items"])


async def test_create_returns_a_url_safe_id_and_a_new_conversation_is_empty(
    store: ConversationStore,
) -> None:
    first = await store.create(ALICE)
    second = await store.create(ALICE)
    assert first != second
    assert len(first) == 32 and first.isalnum() and first == first.lower()
    assert await store.load_for_prompt(first, ALICE, budget_chars=10_000) == []
    assert (await store.history(first, ALICE))["turns"] == []


async def test_turns_come_back_as_alternating_messages_oldest_first(
    store: ConversationStore,
) -> None:
    cid = await store.create(ALICE)
    await add(store, cid, "q1", "a1")
    await add(store, cid, "q2", "a2")
    await add(store, cid, "q3", "a3")
    assert await store.load_for_prompt(cid, ALICE, budget_chars=10_000) == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "q3"},
        {"role": "assistant", "content": "a3"},
    ]


async def test_budget_drops_whole_exchanges_from_the_oldest_end(store: ConversationStore) -> None:
    cid = await store.create(ALICE)
    for i in range(1, 4):
        await add(store, cid, f"question-{i}", f"answer-{i}")  # 10 + 8 = 18 chars each
    contents = [m["content"] for m in await store.load_for_prompt(cid, ALICE, budget_chars=36)]
    assert contents == ["question-2", "answer-2", "question-3", "answer-3"]
    contents = [m["content"] for m in await store.load_for_prompt(cid, ALICE, budget_chars=35)]
    assert contents == ["question-3", "answer-3"]
    assert await store.load_for_prompt(cid, ALICE, budget_chars=17) == []
    assert await store.load_for_prompt(cid, ALICE, budget_chars=0) == []


async def test_an_exchange_that_does_not_fit_hides_everything_older(
    store: ConversationStore,
) -> None:
    cid = await store.create(ALICE)
    await add(store, cid, "old", "tiny")
    await add(store, cid, "middle", "x" * 500)
    await add(store, cid, "new", "end")
    messages = await store.load_for_prompt(cid, ALICE, budget_chars=100)
    assert [m["content"] for m in messages] == ["new", "end"]


async def test_failed_and_stopped_turns_are_stored_as_such_and_replay_only_their_question(
    store: ConversationStore,
) -> None:
    cid = await store.create(ALICE)
    await add(store, cid, "q1", "a1")
    await add(
        store,
        cid,
        "q2",
        "half an ans",
        status="error",
        finish_reason=None,
        error_code="upstream_timeout",
    )
    await add(store, cid, "q3", "partial", status="stopped", finish_reason=None)
    await add(store, cid, "q4", "a4")

    assert await store.load_for_prompt(cid, ALICE, budget_chars=10_000) == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "user", "content": "q3"},
        {"role": "user", "content": "q4"},
        {"role": "assistant", "content": "a4"},
    ]
    turns = (await store.history(cid, ALICE))["turns"]
    assert [(t["status"], t["answer"], t["error_code"]) for t in turns] == [
        ("complete", "a1", None),
        ("error", "half an ans", "upstream_timeout"),
        ("stopped", "partial", None),
        ("complete", "a4", None),
    ]


async def test_a_complete_turn_with_an_empty_answer_replays_only_its_question(
    store: ConversationStore,
) -> None:
    cid = await store.create(ALICE)
    await add(store, cid, "call a tool", "", finish_reason="tool_calls")
    assert await store.load_for_prompt(cid, ALICE, budget_chars=100) == [
        {"role": "user", "content": "call a tool"}
    ]


async def test_unknown_status_is_rejected_before_anything_is_written(
    store: ConversationStore, dynamo: Any, table_name: str
) -> None:
    cid = await store.create(ALICE)
    with pytest.raises(ValueError):
        await add(store, cid, "q", "a", status="partial")
    assert len(items(dynamo, table_name, cid)) == 1  # the meta item only


async def test_history_reports_every_turn_with_its_metadata(
    store: ConversationStore, clock: FakeClock
) -> None:
    created = int(clock())
    cid = await store.create(ALICE)
    clock.advance(5)
    usage = {"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46}
    await add(store, cid, "hello", "hi there", usage=usage, model="glm-4-plus")
    history = await store.history(cid, ALICE)
    assert history == {
        "id": cid,
        "owner": ALICE,
        "created_at": created,
        "turns": [
            {
                "question": "hello",
                "answer": "hi there",
                "status": "complete",
                "usage": usage,
                "model": "glm-4-plus",
                "finish_reason": "stop",
                "error_code": None,
                "created_at": created + 5,
            }
        ],
    }


async def test_another_user_is_forbidden_to_read_or_extend_a_conversation(
    store: ConversationStore, dynamo: Any, table_name: str
) -> None:
    cid = await store.create(ALICE)
    await add(store, cid, "secret question", "secret answer")
    with pytest.raises(ConversationForbidden):
        await store.load_for_prompt(cid, BOB, budget_chars=10_000)
    with pytest.raises(ConversationForbidden):
        await store.history(cid, BOB)
    with pytest.raises(ConversationForbidden):
        await store.append_turn(
            cid,
            BOB,
            question="q",
            answer="a",
            status="complete",
            usage=None,
            model="m",
            finish_reason="stop",
        )
    assert len(items(dynamo, table_name, cid)) == 2  # meta + Alice's turn, nothing from Bob


@pytest.mark.parametrize("cid", ["0" * 32, "not-an-id", "", "CONV#x", "A" * 32])
async def test_unknown_or_malformed_id_is_not_found(store: ConversationStore, cid: str) -> None:
    with pytest.raises(ConversationNotFound):
        await store.load_for_prompt(cid, ALICE, budget_chars=100)
    with pytest.raises(ConversationNotFound):
        await store.history(cid, ALICE)
    with pytest.raises(ConversationNotFound):
        await add(store, cid, "q", "a")


async def test_items_carry_a_ttl_and_each_turn_extends_the_conversation(
    store: ConversationStore, dynamo: Any, table_name: str, clock: FakeClock
) -> None:
    start = int(clock())
    cid = await store.create(ALICE)
    clock.advance(3 * DAY)
    await add(store, cid, "q", "a")
    by_sk = {i["sk"]["S"]: i for i in items(dynamo, table_name, cid)}
    assert set(by_sk) == {"META", "TURN#00000001"}
    assert int(by_sk["META"]["expires_at"]["N"]) == start + 33 * DAY
    assert int(by_sk["TURN#00000001"]["expires_at"]["N"]) == start + 33 * DAY


async def test_an_expired_conversation_is_not_found_even_before_dynamodb_deletes_it(
    store: ConversationStore, clock: FakeClock
) -> None:
    cid = await store.create(ALICE)
    await add(store, cid, "q", "a")
    clock.advance(30 * DAY)
    with pytest.raises(ConversationNotFound):
        await store.history(cid, ALICE)
    with pytest.raises(ConversationNotFound):
        await add(store, cid, "q2", "a2")


async def test_expired_turns_are_skipped_while_newer_ones_remain(
    store: ConversationStore, clock: FakeClock
) -> None:
    cid = await store.create(ALICE)
    await add(store, cid, "old", "a-old")
    clock.advance(20 * DAY)
    await add(store, cid, "new", "a-new")
    clock.advance(15 * DAY)  # the first turn is 35 days old, the second 15
    messages = await store.load_for_prompt(cid, ALICE, budget_chars=10_000)
    assert [m["content"] for m in messages] == ["new", "a-new"]
    assert [t["question"] for t in (await store.history(cid, ALICE))["turns"]] == ["new"]


async def test_concurrent_appends_get_distinct_turns(store: ConversationStore) -> None:
    cid = await store.create(ALICE)
    await asyncio.gather(*(add(store, cid, f"q{i}", f"a{i}") for i in range(12)))
    turns = (await store.history(cid, ALICE))["turns"]
    assert sorted(t["question"] for t in turns) == sorted(f"q{i}" for i in range(12))


async def test_long_conversations_are_read_across_pages(store: ConversationStore) -> None:
    cid = await store.create(ALICE)
    for i in range(30):
        await add(store, cid, f"q{i:02d}", f"a{i:02d}")
    messages = await store.load_for_prompt(cid, ALICE, budget_chars=1_000_000)
    assert [m["content"] for m in messages[::2]] == [f"q{i:02d}" for i in range(30)]
    history = await store.history(cid, ALICE)
    assert [t["answer"] for t in history["turns"]] == [f"a{i:02d}" for i in range(30)]


async def test_oversized_text_is_cut_on_a_character_boundary_and_flagged(
    store: ConversationStore, dynamo: Any, table_name: str
) -> None:
    cid = await store.create(ALICE)
    answer = "答" * MAX_TEXT_BYTES  # three bytes each in UTF-8
    await add(store, cid, "q", answer)
    turn = (await store.history(cid, ALICE))["turns"][0]
    assert answer.startswith(turn["answer"])
    assert len(turn["answer"].encode()) <= MAX_TEXT_BYTES
    stored = {i["sk"]["S"]: i for i in items(dynamo, table_name, cid)}["TURN#00000001"]
    assert stored["truncated"] == {"BOOL": True}


async def test_empty_owner_is_rejected(store: ConversationStore) -> None:
    with pytest.raises(ValueError):
        await store.create("")
