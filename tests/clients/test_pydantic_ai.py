"""pydantic-ai on its defaults over Chat Completions: its OpenAI provider pointed at ``/v1``.

Every pydantic-ai tool is ``strict``, its structured output is a ``final_result`` tool with
``tool_choice: "required"``, and it sends the reasoning of a tool-call turn back, which GLM-5.1
requires with thinking on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from openai import AsyncOpenAI
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from devtools.stack import DevStack
from mock_upstream.answer import expected_reasoning_chunks, expected_text, expected_tool_calls

REQUIRED = "You must answer by calling one of the provided functions, not with text, in this turn."


class City(BaseModel):
    name: str
    population: int


def model(stack: DevStack, name: str, asked: list[dict[str, Any]] | None = None) -> OpenAIChatModel:
    """The model behind ``/v1``; ``asked`` collects the request bodies pydantic-ai sends."""

    async def keep(request: httpx.Request) -> None:
        if asked is not None:
            asked.append(json.loads(request.content))

    http = httpx.AsyncClient(event_hooks={"request": [keep]}, timeout=30)
    client = AsyncOpenAI(base_url=stack.url + "/v1", api_key=stack.token, http_client=http)
    return OpenAIChatModel(name, provider=OpenAIProvider(openai_client=client))


def weather_agent(
    stack: DevStack, name: str, output_type: type = str, asked: list[dict[str, Any]] | None = None
) -> Agent:
    agent = Agent(model(stack, name, asked), output_type=output_type)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}"

    return agent


def test_an_agent_calls_its_tool_and_answers_on_glm_5_1_with_thinking(
    stack: DevStack, sent
) -> None:
    asked: list[dict[str, Any]] = []
    result = weather_agent(stack, "glm-5.1", asked=asked).run_sync(
        "Weather in Lima? use get_weather"
    )

    assert asked[0]["tools"][0]["function"]["strict"] is True
    first, second = sent()
    (call,) = expected_tool_calls(first)
    function = first["tools"][0]["function"]
    assert function["name"] == "get_weather" and "strict" not in function
    assert first["tool_choice"] == "auto"
    assert json.loads(call["function"]["arguments"]) == {"city": "Weather in Lima? use get_weather"}
    assistant = second["messages"][1]
    assert assistant["tool_calls"][0]["id"] == call["id"]
    assert assistant["reasoning_content"] == "".join(expected_reasoning_chunks(first))
    assert second["messages"][2]["content"] == "Sunny in Weather in Lima? use get_weather"
    assert result.output == expected_text(second)


def test_structured_output_through_its_default_output_tool(stack: DevStack, sent) -> None:
    asked: list[dict[str, Any]] = []
    result = Agent(model(stack, "glm-4.7", asked), output_type=City).run_sync("Tell me about Lima")

    assert asked[0]["tool_choice"] == "required"
    assert asked[0]["tools"][0]["function"]["strict"] is True
    (body,) = sent()
    assert [t["function"]["name"] for t in body["tools"]] == ["final_result"]
    assert body["tool_choice"] == "auto"
    assert body["messages"][0] == {"role": "system", "content": REQUIRED}
    assert result.output == City(name="Tell me about Lima", population=1)


def test_a_tool_then_structured_output_streamed(stack: DevStack, sent) -> None:
    agent = weather_agent(stack, "glm-4.7", output_type=City)

    async def run() -> City:
        async with agent.run_stream("Lima get_weather") as streamed:
            return await streamed.get_output()

    output = asyncio.run(run())

    first, second = sent()
    assert {t["function"]["name"] for t in first["tools"]} == {"get_weather", "final_result"}
    assert [c["function"]["name"] for c in expected_tool_calls(first)] == ["get_weather"]
    assert [c["function"]["name"] for c in expected_tool_calls(second)] == ["final_result"]
    assert second["messages"][0]["content"].endswith(REQUIRED)
    assert output == City(name="Lima get_weather", population=1)
