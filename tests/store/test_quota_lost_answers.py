"""A quota write whose answer is lost (a timeout after DynamoDB applied it): the caller is told
``state_unavailable`` and the admission is taken back, so nothing stays charged; a reservation is
counted and reconciled once each however often its write is sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from glm_relay.access import AccessClaims
from glm_relay.chat.request import ChatRequest
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.state import QuotaLimits, QuotaStore, UserState
from glm_relay.state.dynamo_client import DynamoClient, DynamoUnavailable

from .fakes import FakeClock

CHAT = ChatRequest(model="glm-4.7", messages=[{"role": "user", "content": "Hi"}], max_tokens=100)


class LosesTheFirstAnswer:
    """DynamoDB applies the first quota write, and its answer never arrives."""

    def __init__(self, client: DynamoClient) -> None:
        self._client = client
        self.lost = 0

    async def post(self, operation: str, payload: Any) -> dict[str, Any]:
        result = await self._client.post(operation, payload)
        quota = operation == "UpdateItem" and payload["Key"]["pk"]["S"].startswith("QUOTA#")
        if quota and not self.lost:
            self.lost += 1
            raise DynamoUnavailable("read timed out")
        return result


async def test_an_admission_whose_answer_was_lost_is_taken_back(
    table_name: str, client_factory: Callable[[], DynamoClient], clock: FakeClock
) -> None:
    losing = LosesTheFirstAnswer(client_factory())
    settings = Settings.from_env({}, conversations_table=table_name)
    state = UserState(settings, client_factory=lambda: losing)  # type: ignore[arg-type,return-value]
    claims = AccessClaims("ruth", 2_000_000_000)

    with pytest.raises(RelayError) as raised:
        await state.admit(claims, CHAT)

    assert raised.value.code is ErrorCode.STATE_UNAVAILABLE and losing.lost == 1
    usage = await state.quotas.usage("ruth")
    assert (usage["requests_used"], usage["tokens_used"]) == (0, 0)  # nothing stays charged
    admission = await state.admit(claims, CHAT)  # the next request is admitted as usual
    assert admission is not None and admission.decision.requests_used == 1


async def test_a_reservation_is_counted_and_reconciled_once(
    table_name: str, client_factory: Callable[[], Any], clock: FakeClock
) -> None:
    store = QuotaStore(table_name, clock=clock, client_factory=client_factory)
    limits = QuotaLimits(requests_per_day=10, tokens_per_day=10_000)

    first = await store.admit("sam", limits, reserve_tokens=500, reservation="r-1")
    again = await store.admit("sam", limits, reserve_tokens=500, reservation="r-1")
    assert first.allowed and again.allowed and again.requests_used == 1

    for _ in range(2):
        await store.reconcile("sam", reserved_tokens=500, actual_tokens=120, reservation="r-1")
    await store.release("sam", reservation="r-1", reserved_tokens=500)  # settled: no effect

    usage = await store.usage("sam")
    assert (usage["requests_used"], usage["tokens_used"]) == (1, 120)
