"""QuotaStore against a moto server: atomic admission, reasons, reset time, reconciliation, TTL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from glm_relay.state import QuotaDecision, QuotaLimits, QuotaStore
from glm_relay.state.dynamo_client import DynamoClient

from .fakes import FakeClock

SUB = "user-alice"
DAY = 86_400
MIDNIGHT_AFTER_CLOCK = int(datetime(2025, 3, 15, tzinfo=UTC).timestamp())


@pytest.fixture
def store(table_name: str, client_factory: Any, clock: FakeClock) -> QuotaStore:
    return QuotaStore(table_name, clock=clock, client_factory=client_factory)


def quota_item(dynamo: Any, table_name: str, sub: str, day: str) -> dict[str, Any] | None:
    result = dynamo.get_item(
        TableName=table_name,
        Key={"pk": {"S": f"QUOTA#{sub}"}, "sk": {"S": f"DAY#{day}"}},
        ConsistentRead=True,
    )
    item: dict[str, Any] | None = result.get("Item")
    return item


class InFlight:
    """Wraps the client to record how many ``UpdateItem`` calls were in flight at once."""

    def __init__(self, client: DynamoClient) -> None:
        self._client = client
        self._running = 0
        self.peak = 0

    async def post(self, operation: str, payload: Any) -> dict[str, Any]:
        if operation != "UpdateItem":
            return await self._client.post(operation, payload)
        self._running += 1
        self.peak = max(self.peak, self._running)
        try:
            await asyncio.sleep(0.005)  # widen the window in which the calls overlap
            return await self._client.post(operation, payload)
        finally:
            self._running -= 1


async def test_exactly_the_limit_of_fifty_concurrent_admits_is_allowed(
    table_name: str, client_factory: Callable[[], Any], clock: FakeClock
) -> None:
    counting = InFlight(client_factory())
    store = QuotaStore(table_name, clock=clock, client_factory=lambda: counting)  # type: ignore[arg-type,return-value]
    limits = QuotaLimits(requests_per_day=10, tokens_per_day=1_000_000)

    decisions = await asyncio.gather(
        *(store.admit(SUB, limits, reserve_tokens=100) for _ in range(50))
    )

    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 10
    assert sorted(d.requests_used for d in allowed) == list(range(1, 11))
    assert {d.reason for d in decisions if not d.allowed} == {"requests"}
    assert counting.peak > 10, "the admits did not overlap"
    usage = await store.usage(SUB)
    assert (usage["requests_used"], usage["tokens_used"]) == (10, 1_000)


async def test_a_full_request_count_refuses_with_reason_requests(store: QuotaStore) -> None:
    limits = QuotaLimits(requests_per_day=2, tokens_per_day=1_000)
    assert (await store.admit(SUB, limits, reserve_tokens=10)).allowed
    assert (await store.admit(SUB, limits, reserve_tokens=10)).allowed
    refused = await store.admit(SUB, limits, reserve_tokens=10)
    assert refused == QuotaDecision(
        allowed=False,
        reason="requests",
        resets_at=MIDNIGHT_AFTER_CLOCK,
        requests_used=2,
        tokens_used=20,
        day="2025-03-14",
    )


async def test_a_reservation_past_the_token_allowance_refuses_with_reason_tokens(
    store: QuotaStore,
) -> None:
    limits = QuotaLimits(requests_per_day=100, tokens_per_day=1_000)
    first = await store.admit(SUB, limits, reserve_tokens=400)
    second = await store.admit(SUB, limits, reserve_tokens=400)
    third = await store.admit(SUB, limits, reserve_tokens=400)
    assert (first.allowed, first.tokens_used) == (True, 400)
    assert (second.allowed, second.tokens_used) == (True, 800)
    assert (third.allowed, third.reason) == (False, "tokens")
    assert (third.requests_used, third.tokens_used) == (2, 800)
    exact_fit = await store.admit(SUB, limits, reserve_tokens=200)
    assert (exact_fit.allowed, exact_fit.tokens_used) == (True, 1_000)


async def test_a_refusal_consumes_nothing(store: QuotaStore) -> None:
    limits = QuotaLimits(requests_per_day=5, tokens_per_day=100)
    await store.admit(SUB, limits, reserve_tokens=90)
    for _ in range(3):
        assert not (await store.admit(SUB, limits, reserve_tokens=50)).allowed
    usage = await store.usage(SUB)
    assert (usage["requests_used"], usage["tokens_used"]) == (1, 90)


async def test_a_reservation_bigger_than_the_whole_day_is_refused_on_a_fresh_day(
    store: QuotaStore, dynamo: Any, table_name: str
) -> None:
    decision = await store.admit(SUB, QuotaLimits(10, 1_000), reserve_tokens=1_001)
    assert (decision.allowed, decision.reason, decision.requests_used) == (False, "tokens", 0)
    assert quota_item(dynamo, table_name, SUB, "2025-03-14") is None


async def test_a_zero_request_limit_refuses_everything(store: QuotaStore) -> None:
    decision = await store.admit(SUB, QuotaLimits(0, 1_000), reserve_tokens=0)
    assert (decision.allowed, decision.reason) == (False, "requests")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2025, 3, 14, 0, 0, 0, tzinfo=UTC), datetime(2025, 3, 15, tzinfo=UTC)),
        (datetime(2025, 3, 14, 23, 59, 59, tzinfo=UTC), datetime(2025, 3, 15, tzinfo=UTC)),
        (datetime(2024, 12, 31, 12, 0, 0, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
        (datetime(2024, 2, 28, 12, 0, 0, tzinfo=UTC), datetime(2024, 2, 29, tzinfo=UTC)),
    ],
)
async def test_resets_at_is_the_next_utc_midnight(
    store: QuotaStore, clock: FakeClock, now: datetime, expected: datetime
) -> None:
    clock.set(now)
    allowed = await store.admit(SUB, QuotaLimits(1, 100), reserve_tokens=1)
    refused = await store.admit(SUB, QuotaLimits(1, 100), reserve_tokens=1)
    assert allowed.resets_at == refused.resets_at == int(expected.timestamp())
    assert allowed.day == now.strftime("%Y-%m-%d")
    assert (await store.usage(SUB))["resets_at"] == int(expected.timestamp())


async def test_reconcile_returns_unused_tokens_and_charges_overruns(store: QuotaStore) -> None:
    limits = QuotaLimits(requests_per_day=10, tokens_per_day=10_000)
    decision = await store.admit(SUB, limits, reserve_tokens=4_000)
    await store.reconcile(SUB, reserved_tokens=4_000, actual_tokens=1_500, day=decision.day)
    assert (await store.usage(SUB))["tokens_used"] == 1_500

    decision = await store.admit(SUB, limits, reserve_tokens=1_000)
    await store.reconcile(SUB, reserved_tokens=1_000, actual_tokens=1_800, day=decision.day)
    assert (await store.usage(SUB))["tokens_used"] == 3_300

    await store.reconcile(SUB, reserved_tokens=0, actual_tokens=0)  # no-op
    assert (await store.usage(SUB))["tokens_used"] == 3_300


async def test_returned_tokens_can_be_reserved_again(store: QuotaStore) -> None:
    limits = QuotaLimits(requests_per_day=10, tokens_per_day=1_000)
    first = await store.admit(SUB, limits, reserve_tokens=1_000)
    assert not (await store.admit(SUB, limits, reserve_tokens=500)).allowed
    await store.reconcile(SUB, reserved_tokens=1_000, actual_tokens=300, day=first.day)
    assert (await store.admit(SUB, limits, reserve_tokens=500)).allowed


async def test_reconcile_after_midnight_corrects_the_day_of_the_reservation(
    store: QuotaStore, clock: FakeClock
) -> None:
    clock.set(datetime(2025, 3, 14, 23, 59, 50, tzinfo=UTC))
    decision = await store.admit(SUB, QuotaLimits(10, 10_000), reserve_tokens=2_000)
    clock.advance(20)  # the stream ends on the next UTC day
    await store.reconcile(SUB, reserved_tokens=2_000, actual_tokens=700, day=decision.day)
    assert (await store.usage(SUB))["tokens_used"] == 0  # today untouched
    clock.advance(-20)
    assert (await store.usage(SUB))["tokens_used"] == 700


async def test_reconcile_on_a_day_with_no_counters_writes_nothing(
    store: QuotaStore, dynamo: Any, table_name: str
) -> None:
    await store.reconcile(SUB, reserved_tokens=100, actual_tokens=50, day="2025-03-01")
    assert quota_item(dynamo, table_name, SUB, "2025-03-01") is None
    with pytest.raises(ValueError):
        await store.reconcile(SUB, reserved_tokens=1, actual_tokens=2, day="yesterday")


async def test_a_new_utc_day_starts_from_zero(store: QuotaStore, clock: FakeClock) -> None:
    limits = QuotaLimits(requests_per_day=1, tokens_per_day=100)
    assert (await store.admit(SUB, limits, reserve_tokens=100)).allowed
    assert not (await store.admit(SUB, limits, reserve_tokens=1)).allowed
    clock.set(datetime(2025, 3, 15, 0, 0, 1, tzinfo=UTC))
    decision = await store.admit(SUB, limits, reserve_tokens=100)
    assert (decision.allowed, decision.requests_used, decision.tokens_used) == (True, 1, 100)
    assert decision.day == "2025-03-15"


async def test_users_have_separate_counters(store: QuotaStore) -> None:
    limits = QuotaLimits(requests_per_day=1, tokens_per_day=100)
    assert (await store.admit(SUB, limits, reserve_tokens=1)).allowed
    assert (await store.admit("user-bob", limits, reserve_tokens=1)).allowed
    assert not (await store.admit(SUB, limits, reserve_tokens=1)).allowed


async def test_day_counters_expire_two_days_after_the_day_ends(
    store: QuotaStore, dynamo: Any, table_name: str
) -> None:
    await store.admit(SUB, QuotaLimits(10, 100), reserve_tokens=5)
    item = quota_item(dynamo, table_name, SUB, "2025-03-14")
    assert item is not None
    expected = datetime(2025, 3, 15, tzinfo=UTC) + timedelta(days=2)
    assert int(item["expires_at"]["N"]) == int(expected.timestamp())


async def test_usage_of_an_idle_user_is_zero(store: QuotaStore) -> None:
    assert await store.usage(SUB) == {
        "day": "2025-03-14",
        "requests_used": 0,
        "tokens_used": 0,
        "resets_at": MIDNIGHT_AFTER_CLOCK,
    }


async def test_negative_reservation_is_rejected(store: QuotaStore) -> None:
    with pytest.raises(ValueError):
        await store.admit(SUB, QuotaLimits(10, 100), reserve_tokens=-1)
