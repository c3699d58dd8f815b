"""Spend budgets per caller, per UTC day and month, and the usage behind them, in money.

Items, beside the quota's (one partition per caller, no scan on the request path):

- ``pk=SPEND#<sub>, sk=DAY#<YYYY-MM-DD>`` / ``sk=MONTH#<YYYY-MM>``: ``spend`` (nano-units of the
  currency: reserved plus settled), ``pending`` (the ids of reservations not yet settled),
  ``expires_at``. Written only for a caller who has that budget.
- ``pk=SPEND#<sub>, sk=USAGE#<YYYY-MM-DD>#<model>``: ``requests``, ``input_tokens``,
  ``cached_tokens``, ``output_tokens``, ``cost`` (nanos), kept ``USAGE_RETENTION_SECONDS``.

A reservation is one conditional ``UpdateItem`` per budget (the check and the increment happen
together, so concurrent requests cannot overshoot), tagged with its id: it is made, settled and
released at most once each, so a write whose answer was lost (a timeout) can be released
safely. A month refused after the day was reserved gives the day back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from glm_relay.chat.prices import SpendLimits
from glm_relay.state.dynamo import (
    DAY_SECONDS,
    NOT_YET_PENDING,
    PENDING_NAMES,
    STILL_PENDING,
    ConditionFailed,
    DayStore,
    Item,
    get_n,
    key,
    n,
    next_utc_midnight,
    pending_ids,
    reservation_values,
    s,
    utc_day,
)

SPEND_PREFIX = "SPEND#"
USAGE_PREFIX = "USAGE#"
RETENTION_AFTER_PERIOD = 2 * DAY_SECONDS
USAGE_RETENTION_SECONDS = 400 * DAY_SECONDS  # a year of reports, and a little more
USAGE_COUNTERS = ("requests", "input_tokens", "cached_tokens", "output_tokens", "cost")
_NAMES = {"#spend": "spend", **PENDING_NAMES}


@dataclass(frozen=True, slots=True)
class SpendDecision:
    """A reservation: allowed, or refused with the ``limit`` it hit and when that resets."""

    allowed: bool
    reservation: str
    nanos: int
    periods: tuple[str, ...] = ()  # the sort keys charged
    limit: str | None = None  # "spend_per_day" | "spend_per_month" when refused
    limit_nanos: int = 0
    resets_at: int = 0
    spent_nanos: int = 0  # what that budget held (reservations included) when it refused


@dataclass(slots=True)
class UsageCounts:
    """One answer's (or a period's) usage."""

    requests: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    cost: int = 0  # nanos

    def add(self, other: UsageCounts) -> None:
        for name in USAGE_COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def month_of(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m")


def next_month_start(epoch: float) -> int:
    moment = datetime.fromtimestamp(epoch, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp())


class SpendStore(DayStore):
    """Budgets and per-model usage for each caller ``sub``."""

    def periods(self) -> list[tuple[str, str, int]]:
        """(limit name, sort key, resets at) of the current day and month."""
        now = self._clock()
        return [
            ("spend_per_day", f"DAY#{utc_day(now)}", next_utc_midnight(now)),
            ("spend_per_month", f"MONTH#{month_of(now)}", next_month_start(now)),
        ]

    async def reserve(
        self, sub: str, limits: SpendLimits, nanos: int, reservation: str | None = None
    ) -> SpendDecision:
        """Reserve ``nanos`` under every budget ``limits`` sets, or under none. If this raises
        (a write's answer was lost), :meth:`release` the same ``reservation`` id."""
        reservation = reservation or os.urandom(16).hex()
        charged: list[str] = []
        budgets = {"spend_per_day": limits.per_day, "spend_per_month": limits.per_month}
        for name, sk, resets_at in self.periods():
            limit = budgets[name]
            if limit is None:
                continue
            refused_at = await self._reserve_one(sub, sk, reservation, nanos, limit, resets_at)
            if refused_at is not None:
                await self._finish(sub, charged, reservation, -nanos)
                return SpendDecision(
                    False, reservation, nanos, (), name, limit, resets_at, refused_at
                )
            charged.append(sk)
        return SpendDecision(True, reservation, nanos, tuple(charged))

    async def settle(self, sub: str, decision: SpendDecision, actual_nanos: int) -> None:
        """Replace the reservation by what the answer cost (once; a repeat changes nothing)."""
        await self._finish(
            sub, decision.periods, decision.reservation, actual_nanos - decision.nanos
        )

    async def release(self, sub: str, reservation: str, nanos: int) -> None:
        """Give a reservation back in every current period where it landed (and only there):
        after a refusal upstream, or a reservation whose answer was lost."""
        periods = [sk for _, sk, _ in self.periods()]
        await self._finish(sub, periods, reservation, -nanos)

    async def record(
        self, sub: str, model: str, counts: UsageCounts, day: str | None = None
    ) -> None:
        """Add one answer's usage to the caller's day for ``model``."""
        now = self._clock()
        values = {f":{name}": n(getattr(counts, name)) for name in USAGE_COUNTERS}
        await self._table.call(
            "update_item",
            Key=key(SPEND_PREFIX + sub, f"{USAGE_PREFIX}{day or utc_day(now)}#{model}"),
            UpdateExpression="ADD "
            + ", ".join(f"#{name} :{name}" for name in USAGE_COUNTERS)
            + " SET #exp = :exp",
            ExpressionAttributeNames={
                **{f"#{name}": name for name in USAGE_COUNTERS},
                "#exp": "expires_at",
            },
            ExpressionAttributeValues={**values, ":exp": n(int(now) + USAGE_RETENTION_SECONDS)},
        )

    async def usage(self, sub: str, month: str | None = None) -> list[tuple[str, str, UsageCounts]]:
        """The caller's (day, model, counts) of ``month`` (default: this one), oldest first."""
        prefix = f"{USAGE_PREFIX}{month or month_of(self._clock())}"
        rows: list[tuple[str, str, UsageCounts]] = []
        start: Item | None = None
        while True:
            params: dict[str, Any] = {
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
                "ExpressionAttributeValues": {":pk": s(SPEND_PREFIX + sub), ":prefix": s(prefix)},
                "ConsistentRead": True,
            }
            if start:
                params["ExclusiveStartKey"] = start
            page = await self._table.call("query", **params)
            rows.extend(usage_row(item) for item in page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                return rows

    async def spent(self, sub: str) -> dict[str, int]:
        """What the current day and month budgets hold now (reservations included), in nanos."""
        out: dict[str, int] = {}
        for name, sk, _ in self.periods():
            result = await self._table.call(
                "get_item", Key=key(SPEND_PREFIX + sub, sk), ConsistentRead=True
            )
            out[name] = get_n(result.get("Item") or {}, "spend")
        return out

    async def _reserve_one(
        self, sub: str, sk: str, reservation: str, nanos: int, limit: int, resets_at: int
    ) -> int | None:
        """``None`` once the reservation is in, else what the budget held when it refused (0
        for a request over the whole budget, which is not read)."""
        room = limit - nanos
        if room < 0:
            return 0
        try:
            await self._table.call(
                "update_item",
                Key=key(SPEND_PREFIX + sub, sk),
                UpdateExpression="ADD #spend :amount, #pending :ids SET #exp = :exp",
                ConditionExpression=(
                    f"(attribute_not_exists(#spend) OR #spend <= :room) AND {NOT_YET_PENDING}"
                ),
                ExpressionAttributeNames={**_NAMES, "#exp": "expires_at"},
                ExpressionAttributeValues={
                    ":amount": n(nanos),
                    **reservation_values(reservation),
                    ":exp": n(resets_at + RETENTION_AFTER_PERIOD),
                    ":room": n(room),
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as failed:
            # Already there: an earlier attempt of this very write landed.
            item = failed.item or {}
            if reservation in pending_ids(item):
                return None
            return get_n(item, "spend")
        return None

    async def _finish(self, sub: str, periods: Any, reservation: str, delta: int) -> None:
        """Apply ``delta`` and close the reservation in each period that still holds it open."""
        for sk in periods:
            try:
                await self._table.call(
                    "update_item",
                    Key=key(SPEND_PREFIX + sub, sk),
                    UpdateExpression="ADD #spend :delta DELETE #pending :ids",
                    ConditionExpression=STILL_PENDING,
                    ExpressionAttributeNames=_NAMES,
                    ExpressionAttributeValues={
                        ":delta": n(delta),
                        **reservation_values(reservation),
                    },
                )
            except ConditionFailed:
                continue  # never landed, or already settled


def usage_row(item: Item) -> tuple[str, str, UsageCounts]:
    """(day, model, counts) of a ``USAGE#<day>#<model>`` item."""
    day, _, model = item["sk"]["S"].removeprefix(USAGE_PREFIX).partition("#")
    counts = UsageCounts(**{name: get_n(item, name) for name in USAGE_COUNTERS})
    return day, model, counts


def usage_counts(usage: dict[str, Any], cost: int) -> UsageCounts:
    """One answer's usage (the upstream's ``usage`` object) as counters."""
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return UsageCounts(
        requests=1,
        input_tokens=_int(usage.get("prompt_tokens")),
        cached_tokens=_int(cached),
        output_tokens=_int(usage.get("completion_tokens")),
        cost=cost,
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
