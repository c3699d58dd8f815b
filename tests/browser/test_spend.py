"""The page shows what its person spent today (``GET /usage``), with their daily budget, and
updates it after each answer."""

from __future__ import annotations

import time

import httpx
from playwright.sync_api import expect

from devtools.stack import DEV_ACCESS_TOKEN_SECRET
from glm_relay.access import TokenLimits, mint_access_token


def today_cost(stack, token: str) -> float:
    usage = httpx.get(f"{stack.url}/usage", headers={"Authorization": f"Bearer {token}"})
    return float(usage.json()["today"]["cost"])


def test_the_spend_line_shows_todays_cost_and_budget_and_follows_each_answer(
    relay, upstream, page, stack
) -> None:
    token = mint_access_token(
        "page-spender", 600, DEV_ACCESS_TOKEN_SECRET, limits=TokenLimits(spend_per_day=2)
    )
    relay.open(token=token)
    line = relay.by_id("spend-today")
    expect(line).to_have_text("Today 0.000000 USD of 2.00")

    exchange = relay.ask("What does this cost #chunks=8", model="glm-4.7")
    assert relay.wait_finished(exchange) == "done"

    expect(line).not_to_have_text("Today 0.000000 USD of 2.00")
    # The page shows the done event's cost at once; the relay's own figure lands a moment later.
    deadline = time.monotonic() + 5
    while (cost := today_cost(stack, token)) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cost > 0
    expect(line).to_have_text(f"Today {cost:.6f} USD of 2.00")
    assert float(str(line.get_attribute("data-cost"))) == cost


def test_a_budget_under_a_cent_is_shown_with_its_digits(relay, page, stack) -> None:
    token = mint_access_token(
        "page-small", 600, DEV_ACCESS_TOKEN_SECRET, limits=TokenLimits(spend_per_day=0.001)
    )
    relay.open(token=token)
    expect(relay.by_id("spend-today")).to_have_text("Today 0.000000 USD of 0.001")


def test_without_a_token_there_is_no_spend_line(relay, page, stack) -> None:
    relay.open(token="")
    expect(relay.by_id("question-input")).to_be_visible()
    expect(relay.by_id("spend-today")).to_be_hidden()
