"""The OpenAI Agents SDK on its defaults (the Responses API, ``@function_tool`` with a strict
schema) against the relay: an agent run with a tool, streamed and not, on a model that reasons,
each compared with what the fake upstream received and answered."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from agents import Agent, RunConfig, Runner, function_tool
from agents.models.openai_responses import OpenAIResponsesModel
from openai import AsyncOpenAI
from pydantic import BaseModel

from devtools.stack import DevStack
from mock_upstream.answer import expected_reasoning_chunks, expected_text, expected_tool_calls

CALLED: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    CALLED.append(city)
    return f"Sunny in {city}"


@pytest.fixture
async def agent(stack: DevStack) -> AsyncIterator[Agent]:
    client = AsyncOpenAI(base_url=stack.url + "/v1", api_key=stack.token, max_retries=0)
    async with client:
        yield Agent(
            name="weather",
            instructions="Answer questions about the weather.",
            tools=[get_weather],
            model=OpenAIResponsesModel(model="glm-5.1", openai_client=client),
        )
    CALLED.clear()


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_agent_calls_its_tool_and_answers_from_the_result(
    agent: Agent, sent, streamed: bool
) -> None:
    prompt = "Weather in Paris #tool=get_weather"
    config = RunConfig(tracing_disabled=True)
    if streamed:
        result = Runner.run_streamed(agent, prompt, run_config=config)
        kinds = [event.type async for event in result.stream_events()]
        assert "raw_response_event" in kinds
    else:
        result = await Runner.run(agent, prompt, run_config=config)

    asked, answered = sent()
    (call,) = expected_tool_calls(asked)
    (tool,) = asked["tools"]
    assert tool["function"]["name"] == "get_weather"
    assert "strict" not in tool["function"]  # kept by the relay, never sent upstream
    assert asked["messages"][0] == {
        "role": "system",
        "content": "Answer questions about the weather.",
    }
    assert [json.loads(call["function"]["arguments"])["city"]] == CALLED
    turn, output = answered["messages"][-2:]
    assert turn["tool_calls"][0]["id"] == call["id"]
    assert turn["reasoning_content"] == "".join(expected_reasoning_chunks(asked))
    assert output == {
        "role": "tool",
        "tool_call_id": call["id"],
        "content": f"Sunny in {CALLED[0]}",
    }
    assert result.final_output == expected_text(answered)


class Forecast(BaseModel):
    city: str
    sky: str


async def test_an_agent_s_structured_output_comes_back_as_its_output_type(
    agent: Agent, sent
) -> None:
    forecaster = agent.clone(tools=[], output_type=Forecast)
    result = await Runner.run(
        forecaster, "Paris #chunks=3", run_config=RunConfig(tracing_disabled=True)
    )

    (body,) = sent()
    assert body["response_format"] == {"type": "json_object"}  # the schema is asked for in words
    assert result.final_output == Forecast.model_validate_json(expected_text(body))
