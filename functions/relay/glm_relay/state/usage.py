"""Usage as people read it: a caller's own day and month (``GET /usage``), and the operator's
report per user and model over a date range (``python -m glm_relay usage``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from glm_relay.chat.prices import PRICES_DATE, amount_text, money
from glm_relay.state.dynamo import utc_day
from glm_relay.state.spend import (
    SPEND_PREFIX,
    USAGE_COUNTERS,
    USAGE_PREFIX,
    UsageCounts,
    usage_row,
)

if TYPE_CHECKING:
    from glm_relay.chat.prices import PriceTable, SpendLimits
    from glm_relay.state.spend import SpendStore

# The currency is the deployment's (CURRENCY): the table stores amounts, not their unit.
REPORT_COLUMNS = ("user", "model", *USAGE_COUNTERS, "currency")


def counts_json(counts: UsageCounts) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(counts, name) for name in USAGE_COUNTERS}
    out["cost"] = money(counts.cost)
    return out


def _period(rows: Iterable[tuple[str, UsageCounts]]) -> dict[str, Any]:
    total, models = UsageCounts(), dict[str, UsageCounts]()
    for model, counts in rows:
        total.add(counts)
        models.setdefault(model, UsageCounts()).add(counts)
    return {**counts_json(total), "models": {m: counts_json(c) for m, c in sorted(models.items())}}


async def caller_usage(
    store: SpendStore, prices: PriceTable, sub: str, limits: SpendLimits
) -> dict[str, Any]:
    """What ``GET /usage`` answers: today, this month (per model), and the budgets left."""
    rows = await store.usage(sub)
    periods = store.periods()
    today = periods[0][1].removeprefix("DAY#")
    budgets: dict[str, Any] = {}
    spent = await store.spent(sub) if limits.any else {}
    for (name, _, resets_at), limit in zip(
        periods, (limits.per_day, limits.per_month), strict=True
    ):
        if limit is None:
            budgets[name] = None
            continue
        used = spent.get(name, 0)
        budgets[name] = {
            "limit": money(limit),
            "spent": money(used),  # reservations of answers still running included
            "remaining": money(max(0, limit - used)),
            "resets_at": resets_at,
        }
    return {
        "sub": sub,
        "currency": prices.currency,
        "prices_date": PRICES_DATE,
        "today": {"day": today, **_period((m, c) for d, m, c in rows if d == today)},
        "month": {"month": today[:7], **_period((m, c) for _, m, c in rows)},
        "budgets": budgets,
    }


def report(
    items: Iterable[dict[str, Any]], first: str, last: str, currency: str
) -> list[dict[str, Any]]:
    """Usage items (wire shape) summed per user and model over the days ``first``..``last``;
    the cost written as exact decimals (``0.000003``, never ``3e-06``) in ``currency``, then a
    ``total`` row when there is more than one."""
    totals: dict[tuple[str, str], UsageCounts] = {}
    for item in items:
        day, model, counts = usage_row(item)
        if not first <= day <= last:
            continue
        user = item["pk"]["S"].removeprefix(SPEND_PREFIX)
        totals.setdefault((user, model), UsageCounts()).add(counts)
    rows = sorted(totals.items())
    if len(rows) > 1:
        everything = UsageCounts()
        for _, counts in rows:
            everything.add(counts)
        rows.append((("total", ""), everything))
    return [
        {
            "user": user,
            "model": model,
            **counts_json(counts),
            "cost": amount_text(counts.cost),
            "currency": currency,
        }
        for (user, model), counts in rows
    ]


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    """The report as CSV or as an aligned text table."""
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, REPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    cells = [list(REPORT_COLUMNS)] + [[str(row[c]) for c in REPORT_COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(REPORT_COLUMNS))]
    return "".join(
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        + "\n"
        for line in cells
    )


def today() -> str:
    import time

    return utc_day(time.time())


def usage_items(table: str, users: list[str], *, region: str | None = None) -> list[dict[str, Any]]:
    """The table's usage items through boto3 (the operator's credentials and profile): one
    query per user, or a scan of the table when no user is named."""
    import boto3

    client = boto3.client("dynamodb", region_name=region)
    prefix = {":prefix": {"S": USAGE_PREFIX}}
    if users:
        pages = [
            client.get_paginator("query").paginate(
                TableName=table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={":pk": {"S": SPEND_PREFIX + user}, **prefix},
            )
            for user in users
        ]
    else:
        pages = [
            client.get_paginator("scan").paginate(
                TableName=table,
                FilterExpression="begins_with(pk, :spend) AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={":spend": {"S": SPEND_PREFIX}, **prefix},
            )
        ]
    return [item for paginator in pages for page in paginator for item in page.get("Items", [])]
