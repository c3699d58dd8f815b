"""What people can see of spend: the answer's cost on ``done`` and in ``/v1`` usage (read by
openai-python), and ``GET /usage`` with the caller's own day, month and budgets."""

from __future__ import annotations

import pytest
from openai import OpenAI

from devtools.stack import DEV_ACCESS_TOKEN_SECRET, DevStack
from glm_relay.access import TokenLimits, mint_access_token
from glm_relay.chat.prices import PriceTable, money
from tests.support.sse_client import read_stream

pytestmark = pytest.mark.usefixtures("upstream_log")


def token_for(sub: str, **limits: float) -> str:
    return mint_access_token(sub, 600, DEV_ACCESS_TOKEN_SECRET, limits=TokenLimits(**limits))


def ask(stack: DevStack, client, token: str, model: str) -> dict:
    url = f"{stack.url}/chat?q=Hello&model={model}&access_token={token}"
    result = read_stream(client, "GET", url)
    assert result.terminal.event == "done"
    return result.terminal.json


def test_the_done_event_carries_the_answers_cost(stack, client) -> None:
    done = ask(stack, client, token_for("jules"), "glm-4.7")

    expected = money(PriceTable("USD").cost_nanos("glm-4.7", done["usage"]))
    assert done["cost"] == expected > 0 and done["currency"] == "USD"
    assert ask(stack, client, token_for("jules"), "glm-4.7-flash")["cost"] == 0  # a free model


def test_openai_python_reads_the_cost_in_usage(stack) -> None:
    token = token_for("kim")
    with OpenAI(base_url=stack.url + "/v1", api_key=token, max_retries=0, timeout=30) as oai:
        messages = [{"role": "user", "content": "Hello"}]
        completion = oai.chat.completions.create(model="glm-4.7", messages=messages)
        chunks = list(
            oai.chat.completions.create(
                model="glm-4.7",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
        )

    usage = completion.usage
    assert usage is not None and usage.total_tokens > 0
    assert usage.model_extra["cost"] == money(
        PriceTable("USD").cost_nanos("glm-4.7", usage.model_dump())
    )
    last = chunks[-1].usage
    assert last is not None and last.model_extra["cost"] > 0


def test_usage_answers_the_callers_own_day_month_and_budget(stack, client) -> None:
    token = token_for("lena", spend_per_day=1, spend_per_month=20)
    costs = [ask(stack, client, token, model)["cost"] for model in ("glm-4.7", "glm-4.7", "glm-5")]
    ask(stack, client, token_for("someone-else"), "glm-4.7")

    response = client.get(f"{stack.url}/usage", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    usage = response.json()
    assert usage["sub"] == "lena" and usage["currency"] == "USD"
    today, month = usage["today"], usage["month"]
    assert today["requests"] == month["requests"] == 3
    assert set(today["models"]) == {"glm-4.7", "glm-5"}
    assert today["models"]["glm-4.7"]["requests"] == 2
    assert today["cost"] == pytest.approx(sum(costs), abs=1e-12)
    assert today["input_tokens"] > 0 and today["output_tokens"] > 0
    day = usage["budgets"]["spend_per_day"]
    assert day["limit"] == 1 and day["spent"] == pytest.approx(sum(costs), abs=1e-12)
    assert day["remaining"] == pytest.approx(1 - sum(costs), abs=1e-12)
    assert usage["budgets"]["spend_per_month"]["limit"] == 20

    fresh = client.get(f"{stack.url}/usage?access_token={token_for('nobody-yet')}").json()
    assert fresh["today"]["requests"] == 0 and fresh["budgets"]["spend_per_day"] is None
    assert client.get(f"{stack.url}/usage").status_code == 401


def test_an_answer_cut_short_is_charged_for_its_reasoning_and_prompt_too(stack, client) -> None:
    # glm-4.7 reasons first; the stream breaks after its reasoning pieces, before any text, so
    # the upstream's usage never arrives. Such an answer used to be charged its text: nothing.
    token = token_for("max")
    url = f"{stack.url}/chat?q=Think%20first%20%23fault%3Ddrop%20%23after%3D6&model=glm-4.7"
    result = read_stream(client, "GET", f"{url}&access_token={token}")
    assert result.terminal.event == "error"
    reasoning = "".join(e.json["content"] for e in result.events if e.event == "reasoning")
    assert reasoning and not result.text

    usage = client.get(f"{stack.url}/usage?access_token={token}").json()["today"]
    assert usage["requests"] == 1
    assert usage["output_tokens"] == -(-len(reasoning) // 2)  # one token per two characters
    assert usage["input_tokens"] > 0 and usage["cost"] > 0
