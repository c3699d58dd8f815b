"""Per-user daily quotas: requests and tokens per UTC day, enforced atomically.

One item per user and UTC day: ``pk=QUOTA#<sub>, sk=DAY#<YYYY-MM-DD>`` with ``requests``,
``tokens_used`` and ``expires_at`` (two days after the day ends, so yesterday's usage can still be
reconciled and inspected). A new day is simply a new item, which is why there is no reset job.

Admission is a single conditional ``UpdateItem``: the check and the increment happen together in
DynamoDB, so concurrent requests from one user cannot overshoot the limit. Tokens are reserved up
front (the request's worst case or an estimate) and corrected by :meth:`QuotaStore.reconcile` once
the stream reports what it really used. A reservation may carry an id, kept in the item's
``pending`` set until it is reconciled: then it is counted, reconciled and released at most once
each, so one whose write answered with a timeout (it may have landed) can be released safely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from glm_relay.state.dynamo import (
    DAY_SECONDS,
    NOT_YET_PENDING,
    PENDING_NAMES,
    STILL_PENDING,
    ConditionFailed,
    DayStore,
    Item,
    get_n,
    n,
    next_utc_midnight,
    pending_ids,
    quota_key,
    reservation_values,
    utc_day,
)

RETENTION_AFTER_DAY = 2 * DAY_SECONDS
"""How long a day's counters outlive the day (item TTL)."""

_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NAMES = {"#req": "requests", "#tok": "tokens_used", "#exp": "expires_at"}


@dataclass(frozen=True)
class QuotaLimits:
    requests_per_day: int
    tokens_per_day: int


@dataclass(frozen=True)
class QuotaDecision:
    """The outcome of :meth:`QuotaStore.admit`.

    ``reason`` is ``"requests"`` or ``"tokens"`` when refused. The counters are the day's values
    after this request when allowed, the unchanged ones when refused. ``day`` is the UTC day the
    reservation was charged to: pass it back to :meth:`QuotaStore.reconcile`.
    """

    allowed: bool
    reason: str | None
    resets_at: int
    requests_used: int
    tokens_used: int
    day: str


class QuotaStore(DayStore):
    """Daily request and token counters per token ``sub``."""

    async def admit(
        self,
        sub: str,
        limits: QuotaLimits,
        *,
        reserve_tokens: int,
        reservation: str | None = None,
    ) -> QuotaDecision:
        """Count one request and reserve ``reserve_tokens`` if both stay within today's limits.

        Allowed when requests so far < ``requests_per_day`` and tokens so far + ``reserve_tokens``
        <= ``tokens_per_day``. A reservation bigger than the whole daily allowance is refused
        without writing anything. With a ``reservation`` id the same admission is never counted
        twice, and :meth:`release` can take it back.
        """
        _require_sub(sub)
        if reserve_tokens < 0:
            raise ValueError("reserve_tokens must not be negative")
        now = self._clock()
        day = utc_day(now)
        resets_at = next_utc_midnight(now)
        if limits.requests_per_day <= 0:
            return await self._refusal(sub, day, resets_at, "requests", None)
        token_room = limits.tokens_per_day - reserve_tokens
        if token_room < 0:
            return await self._refusal(sub, day, resets_at, "tokens", None)
        update = "ADD #req :one, #tok :reserve SET #exp = :exp"
        condition = (
            "(attribute_not_exists(#req) OR #req < :maxrequests)"
            " AND (attribute_not_exists(#tok) OR #tok <= :tokenroom)"
        )
        names: dict[str, str] = dict(_NAMES)
        values: dict[str, dict[str, Any]] = {
            ":one": n(1),
            ":reserve": n(reserve_tokens),
            ":exp": n(resets_at + RETENTION_AFTER_DAY),
            ":maxrequests": n(limits.requests_per_day),
            ":tokenroom": n(token_room),
        }
        if reservation is not None:
            update = "ADD #req :one, #tok :reserve, #pending :ids SET #exp = :exp"
            condition += f" AND {NOT_YET_PENDING}"
            names.update(PENDING_NAMES)
            values.update(reservation_values(reservation))
        try:
            result = await self._table.call(
                "update_item",
                Key=quota_key(sub, day),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as failed:
            current = failed.item or await self._get(sub, day)
            if reservation is not None and reservation in pending_ids(current):
                return _decision(current, day=day, resets_at=resets_at)  # counted already
            reason = (
                "requests" if get_n(current, "requests") >= limits.requests_per_day else "tokens"
            )
            return await self._refusal(sub, day, resets_at, reason, current)
        return _decision(result["Attributes"], day=day, resets_at=resets_at)

    async def reconcile(
        self,
        sub: str,
        *,
        reserved_tokens: int,
        actual_tokens: int,
        day: str | None = None,
        reservation: str | None = None,
    ) -> None:
        """Replace a reservation by the real token count on the day it was made.

        ``day`` should be ``QuotaDecision.day`` (a stream may end after midnight); without it,
        today. A day whose item no longer exists is left alone rather than recreated without TTL.
        A ``reservation`` id is reconciled once: a repeat (or one never counted) changes nothing.
        """
        _require_sub(sub)
        if day is None:
            day = utc_day(self._clock())
        elif not _DAY_RE.fullmatch(day):
            raise ValueError(f"day must be YYYY-MM-DD, not {day!r}")
        await self._adjust(sub, day, actual_tokens - reserved_tokens, 0, reservation)

    async def release(
        self, sub: str, *, reservation: str, reserved_tokens: int, day: str | None = None
    ) -> None:
        """Take back a whole admission (its request and its tokens) if, and only if, it was
        counted and not yet reconciled: for one whose write's answer was lost."""
        if day is None:
            day = utc_day(self._clock())
        await self._adjust(sub, day, -reserved_tokens, -1, reservation)

    async def _adjust(
        self, sub: str, day: str, tokens: int, requests: int, reservation: str | None
    ) -> None:
        if tokens == 0 and requests == 0 and reservation is None:
            return
        update = "ADD #tok :delta, #req :requests"
        names = {"#tok": "tokens_used", "#req": "requests"}
        values: dict[str, dict[str, Any]] = {":delta": n(tokens), ":requests": n(requests)}
        condition = "attribute_exists(pk)"
        if reservation is not None:
            update += " DELETE #pending :ids"
            condition = STILL_PENDING
            names.update(PENDING_NAMES)
            values.update(reservation_values(reservation))
        try:
            await self._table.call(
                "update_item",
                Key=quota_key(sub, day),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ConditionFailed:
            return

    async def usage(self, sub: str) -> dict[str, Any]:
        """Today's counters: ``day``, ``requests_used``, ``tokens_used``, ``resets_at``."""
        _require_sub(sub)
        now = self._clock()
        day = utc_day(now)
        item = await self._get(sub, day)
        return {
            "day": day,
            "requests_used": get_n(item, "requests"),
            "tokens_used": get_n(item, "tokens_used"),
            "resets_at": next_utc_midnight(now),
        }

    async def _get(self, sub: str, day: str) -> Item:
        result = await self._table.call("get_item", Key=quota_key(sub, day), ConsistentRead=True)
        item: Item = result.get("Item") or {}
        return item

    async def _refusal(
        self, sub: str, day: str, resets_at: int, reason: str, current: Item | None
    ) -> QuotaDecision:
        if current is None:
            current = await self._get(sub, day)
        return _decision(current, day=day, resets_at=resets_at, reason=reason)


def _decision(item: Item, *, day: str, resets_at: int, reason: str | None = None) -> QuotaDecision:
    """The decision with the day's counters as ``item`` holds them (refused if ``reason``)."""
    return QuotaDecision(
        allowed=reason is None,
        reason=reason,
        resets_at=resets_at,
        requests_used=get_n(item, "requests"),
        tokens_used=get_n(item, "tokens_used"),
        day=day,
    )


def _require_sub(sub: str) -> None:
    if not sub:
        raise ValueError("sub is empty")
