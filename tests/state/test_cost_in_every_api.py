"""The answer's cost in the Responses and Messages APIs' own ``usage`` (an extra ``cost``
field, in the deployment's currency, as ``/v1/chat/completions`` reports it), read back by the
SDKs that parse those objects: openai-python, the Agents SDK and anthropic."""

from __future__ import annotations

import pytest
from agents import Agent, RunConfig, Runner
from agents.models.openai_responses import OpenAIResponsesModel
from anthropic import Anthropic
from openai import AsyncOpenAI, OpenAI

from devtools.stack import DevStack
from glm_relay.chat.prices import PriceTable, money

pytestmark = pytest.mark.usefixtures("upstream_log")
PRICES = PriceTable("USD")


def zhipu_usage(prompt: int, cached: int, completion: int) -> dict:
    return {
        "prompt_tokens": prompt,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens": completion,
    }


def test_a_response_carries_its_cost_in_usage_streamed_or_not(stack: DevStack) -> None:
    with OpenAI(base_url=stack.url + "/v1", api_key=stack.token, max_retries=0, timeout=30) as oai:
        whole = oai.responses.create(model="glm-4.7", input="Hello")
        events = list(oai.responses.create(model="glm-4.7", input="Hello", stream=True))
        stored = oai.responses.retrieve(whole.id)
        free = oai.responses.create(model="glm-4.7-flash", input="Hello")

    usage = whole.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    counts = zhipu_usage(
        usage.input_tokens, usage.input_tokens_details.cached_tokens, usage.output_tokens
    )
    assert usage.model_extra["cost"] == money(PRICES.cost_nanos("glm-4.7", counts)) > 0
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.usage is not None
    assert completed.response.usage.model_extra["cost"] > 0
    assert (
        stored.usage is not None and stored.usage.model_extra["cost"] == usage.model_extra["cost"]
    )
    assert free.usage is not None and free.usage.model_extra["cost"] == 0


async def test_the_agents_sdk_runs_on_responses_that_carry_a_cost(stack: DevStack) -> None:
    client = AsyncOpenAI(base_url=stack.url + "/v1", api_key=stack.token, max_retries=0)
    async with client:
        agent = Agent(
            name="plain",
            instructions="Answer briefly.",
            model=OpenAIResponsesModel(model="glm-4.7", openai_client=client),
        )
        config = RunConfig(tracing_disabled=True)
        result = await Runner.run(agent, "Hello", run_config=config)
        streamed = Runner.run_streamed(agent, "Hello", run_config=config)
        kinds = [event.type async for event in streamed.stream_events()]

    assert result.final_output
    assert result.context_wrapper.usage.output_tokens > 0
    assert "raw_response_event" in kinds and streamed.final_output


def test_a_message_carries_its_cost_in_usage_streamed_or_not(stack: DevStack) -> None:
    claude = Anthropic(base_url=stack.url, api_key=stack.token, max_retries=0, timeout=30)
    question = [{"role": "user", "content": "Hello"}]
    message = claude.messages.create(model="glm-4.7", max_tokens=512, messages=question)
    with claude.messages.stream(model="glm-4.7", max_tokens=512, messages=question) as stream:
        events = list(stream)
        final = stream.get_final_message()

    usage = message.usage
    cached = usage.cache_read_input_tokens or 0
    counts = zhipu_usage(usage.input_tokens + cached, cached, usage.output_tokens)
    assert usage.model_extra["cost"] == money(PRICES.cost_nanos("glm-4.7", counts)) > 0
    (delta,) = [event for event in events if event.type == "message_delta"]
    assert delta.usage.model_extra["cost"] > 0
    assert final.usage.output_tokens == delta.usage.output_tokens > 0
