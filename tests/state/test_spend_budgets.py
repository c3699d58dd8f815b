"""Spend budgets through the function, with DynamoDB in moto: a refusal never reaches the
upstream and says which limit and when it resets; an admitted answer is charged what the
upstream's usage says it cost; fifty callers at once against a budget that fits five get five
answers, and the upstream sees five requests."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from devtools.stack import DEV_ACCESS_TOKEN_SECRET, DevStack
from glm_relay.access import TokenLimits, mint_access_token
from glm_relay.chat.prices import PriceTable, amount_text, money
from glm_relay.state.spend import SpendStore

pytestmark = pytest.mark.usefixtures("upstream_log")


def token_for(sub: str, **limits: float) -> str:
    return mint_access_token(sub, 600, DEV_ACCESS_TOKEN_SECRET, limits=TokenLimits(**limits))


def post_chat(
    stack: DevStack, client: httpx.Client, token: str, **fields: object
) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": "Hello there"}], "model": "glm-4.7", **fields}
    return client.post(f"{stack.url}/chat", json=body, headers={"Authorization": f"Bearer {token}"})


def spent(stack: DevStack, sub: str) -> dict[str, int]:
    store = SpendStore(stack.names["table"])
    return asyncio.run(store.spent(sub))


def test_a_request_over_the_daily_budget_is_refused_before_the_upstream(
    stack, client, sent
) -> None:
    # glm-4.7's reservation for 8,192 output tokens is about 0.018 USD.
    response = post_chat(stack, client, token_for("frank", spend_per_day=0.01))

    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "budget_exceeded" and error["limit"] == "spend_per_day"
    assert "daily spend budget of 0.01 USD" in error["message"]
    assert "more than the daily spend budget" in error["message"]  # waiting is no cure
    assert "lower max_tokens" in error["message"]
    assert "resets at" in error["message"] and int(response.headers["retry-after"]) >= 1
    assert sent() == []  # zero upstream calls
    assert spent(stack, "frank") == {"spend_per_day": 0, "spend_per_month": 0}


def test_the_monthly_budget_is_named_when_it_is_the_one_that_refuses(stack, client, sent) -> None:
    token = token_for("gina", spend_per_day=5, spend_per_month=0.001)
    response = post_chat(stack, client, token, max_tokens=1000)  # up to 0.0022 USD

    assert response.status_code == 429
    assert response.json()["error"]["limit"] == "spend_per_month"
    assert "monthly spend budget" in response.json()["error"]["message"]
    assert sent() == []


def test_a_refusal_says_what_the_request_may_cost_and_what_is_left(stack, client, sent) -> None:
    token = token_for("ines", spend_per_day=0.001)
    assert post_chat(stack, client, token, max_tokens=100).status_code == 200
    used = spent(stack, "ines")["spend_per_day"]

    # "Hello there" is estimated at 6 prompt tokens: 6 * 0.60 + 450 * 2.20 per million.
    response = post_chat(stack, client, token, max_tokens=450)

    assert response.status_code == 429 and len(sent()) == 1  # the first request only
    left = amount_text(1_000_000 - used)
    assert response.json()["error"]["message"].startswith(
        "the daily spend budget of 0.001 USD is used up: this request may cost up to "
        f"0.0009936 USD, {left} USD remain; it resets at "
    )
    assert 1_000_000 - used < 993_600  # what is left no longer fits it


def test_an_admitted_answer_is_charged_what_its_usage_cost(stack, client, sent) -> None:
    response = post_chat(stack, client, token_for("hana", spend_per_day=1), max_tokens=256)

    assert response.status_code == 200 and "event: done" in response.text
    (body,) = sent()
    done = [line for line in response.text.splitlines() if line.startswith("data:")][-1]
    usage = httpx.Response(200, content=done[5:]).json()["usage"]
    cost = PriceTable("USD").cost_nanos("glm-4.7", usage)
    assert cost > 0 and body["max_tokens"] == 256
    assert spent(stack, "hana") == {"spend_per_day": cost, "spend_per_month": 0}


# The crowd's request: "Hello there" is estimated at 6 prompt tokens (the fake counts 2) and the
# fake's answer to it is longer than 20 tokens, so every answer is cut at max_tokens 20.
CROWD_BODY = {
    "messages": [{"role": "user", "content": "Hello there"}],
    "model": "glm-4.7",
    "max_tokens": 20,
}
RESERVATION = PriceTable("USD").estimate_nanos("glm-4.7", 6, 20)  # 6 * 600 + 20 * 2,200
SETTLED = PriceTable("USD").cost_nanos("glm-4.7", {"prompt_tokens": 2, "completion_tokens": 20})


async def crowd(stack: DevStack, token: str, size: int) -> list[httpx.Response]:
    """``size`` requests at once, half to ``/v1/chat/completions``, half to ``/chat``."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        paths = ["/v1/chat/completions", "/chat"] * (size // 2)
        return await asyncio.gather(
            *(http.post(stack.url + path, json=CROWD_BODY, headers=headers) for path in paths)
        )


def answer_cost(response: httpx.Response) -> float:
    """The cost an answer reports: in ``/v1`` usage, or on ``/chat``'s ``done`` event."""
    if response.headers["content-type"].startswith("application/json"):
        return float(response.json()["usage"]["cost"])
    lines = response.text.splitlines()
    done = lines.index("event: done")
    return float(json.loads(lines[done + 1].removeprefix("data:"))["cost"])


def test_fifty_callers_at_once_against_a_budget_for_five_get_five_answers(
    stack, client, sent
) -> None:
    # Each answer settles 2,400 nanos below its reservation: the five together free 12,000,
    # less than one more reservation, so however the fifty interleave, exactly five fit. A
    # reservation that read the budget and then wrote it would let more than five through.
    assert (RESERVATION, SETTLED) == (47_600, 45_200)
    assert 5 * (RESERVATION - SETTLED) < RESERVATION
    budget = 5 * RESERVATION  # 0.000238 USD
    sub = f"crowd-{uuid.uuid4().hex[:8]}"
    token = token_for(sub, spend_per_day=budget / 1e9)

    responses = asyncio.run(crowd(stack, token, 50))

    admitted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(admitted) == 5
    for response in refused:
        assert response.status_code == 429
        error = response.json()["error"]
        assert error["code"] == "budget_exceeded" and error["limit"] == "spend_per_day"
        assert int(response.headers["retry-after"]) >= 1
    assert [answer_cost(r) for r in admitted] == [money(SETTLED)] * 5
    chats = [body for body in sent() if "messages" in body]
    assert len(chats) == 5 and all(body["max_tokens"] == 20 for body in chats)

    usage = client.get(f"{stack.url}/usage", headers={"Authorization": f"Bearer {token}"})
    today, day = usage.json()["today"], usage.json()["budgets"]["spend_per_day"]
    assert today["requests"] == 5 and today["output_tokens"] == 5 * 20
    assert today["cost"] == day["spent"] == money(5 * SETTLED) <= day["limit"] == money(budget)
    assert spent(stack, sub)["spend_per_day"] == 5 * SETTLED  # no reservation left open
