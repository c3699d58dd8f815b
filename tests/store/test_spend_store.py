"""SpendStore against a moto server: budgets at their boundary and under concurrency, settling,
releasing a reservation whose answer was lost, day and month resets on an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from glm_relay.chat.prices import SpendLimits
from glm_relay.state.spend import SpendStore, UsageCounts

from .fakes import FakeClock

SUB = "user-bob"


@pytest.fixture
def spend(table_name: str, client_factory: Callable[[], Any], clock: FakeClock) -> SpendStore:
    return SpendStore(table_name, clock=clock, client_factory=client_factory)


async def test_a_reservation_that_fits_exactly_is_allowed_and_one_nano_more_is_not(
    spend: SpendStore,
) -> None:
    limits = SpendLimits(per_day=1_000)
    assert (await spend.reserve(SUB, limits, 600)).allowed
    refused = await spend.reserve(SUB, limits, 401)
    assert not refused.allowed and refused.limit == "spend_per_day"
    assert refused.limit_nanos == 1_000
    assert (await spend.reserve(SUB, limits, 400)).allowed
    assert (await spend.spent(SUB))["spend_per_day"] == 1_000
    assert not (await spend.reserve(SUB, SpendLimits(per_day=10), 11)).allowed  # never fits


async def test_fifty_concurrent_reservations_against_a_budget_that_fits_five(
    spend: SpendStore,
) -> None:
    limits = SpendLimits(per_day=5_000, per_month=1_000_000)

    decisions = await asyncio.gather(*(spend.reserve(SUB, limits, 1_000) for _ in range(50)))

    assert sum(d.allowed for d in decisions) == 5
    assert {d.limit for d in decisions if not d.allowed} == {"spend_per_day"}
    # The refused ones gave their month reservation back: only the five remain.
    assert await spend.spent(SUB) == {"spend_per_day": 5_000, "spend_per_month": 5_000}


async def test_settling_replaces_the_reservation_once(spend: SpendStore) -> None:
    limits = SpendLimits(per_day=10_000, per_month=10_000)
    decision = await spend.reserve(SUB, limits, 4_000)

    await spend.settle(SUB, decision, 1_500)
    await spend.settle(SUB, decision, 1_500)  # a repeat changes nothing

    assert await spend.spent(SUB) == {"spend_per_day": 1_500, "spend_per_month": 1_500}


async def test_a_reservation_whose_answer_was_lost_is_released_once(spend: SpendStore) -> None:
    limits = SpendLimits(per_day=10_000)
    await spend.reserve(SUB, limits, 3_000, reservation="lost-answer")
    # The same write sent again (its first answer timed out) is not counted twice.
    again = await spend.reserve(SUB, limits, 3_000, reservation="lost-answer")
    assert again.allowed and (await spend.spent(SUB))["spend_per_day"] == 3_000

    await spend.release(SUB, "lost-answer", 3_000)
    await spend.release(SUB, "lost-answer", 3_000)
    await spend.release(SUB, "never-made", 3_000)

    assert (await spend.spent(SUB))["spend_per_day"] == 0


async def test_the_day_budget_resets_at_utc_midnight_and_the_month_on_the_first(
    spend: SpendStore, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC))
    limits = SpendLimits(per_day=1_000, per_month=1_500)
    assert (await spend.reserve(SUB, limits, 1_000)).allowed
    refused = await spend.reserve(SUB, limits, 1)
    assert refused.limit == "spend_per_day"
    assert refused.resets_at == int(datetime(2026, 2, 1, tzinfo=UTC).timestamp())

    clock.set(datetime(2026, 2, 1, 0, 0, 0, tzinfo=UTC))  # a new day and a new month
    assert (await spend.reserve(SUB, limits, 1_000)).allowed

    clock.set(datetime(2026, 2, 2, 12, tzinfo=UTC))  # a new day, the same month
    month = await spend.reserve(SUB, limits, 600)
    assert not month.allowed and month.limit == "spend_per_month"
    assert month.resets_at == int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    assert (await spend.spent(SUB))["spend_per_day"] == 0  # the day was given back
    assert (await spend.reserve(SUB, limits, 500)).allowed


async def test_usage_is_kept_per_day_and_model(spend: SpendStore, clock: FakeClock) -> None:
    clock.set(datetime(2026, 3, 10, tzinfo=UTC))
    await spend.record(SUB, "glm-4.7", UsageCounts(1, 100, 40, 20, 5_000))
    await spend.record(SUB, "glm-4.7", UsageCounts(1, 10, 0, 2, 500))
    await spend.record(SUB, "glm-5", UsageCounts(1, 7, 0, 3, 900))
    clock.set(datetime(2026, 3, 11, tzinfo=UTC))
    await spend.record(SUB, "glm-4.7", UsageCounts(1, 1, 0, 1, 10))

    rows = await spend.usage(SUB)

    assert [(day, model) for day, model, _ in rows] == [
        ("2026-03-10", "glm-4.7"),
        ("2026-03-10", "glm-5"),
        ("2026-03-11", "glm-4.7"),
    ]
    assert rows[0][2] == UsageCounts(2, 110, 40, 22, 5_500)
    assert await spend.usage(SUB, "2026-02") == []
