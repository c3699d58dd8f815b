"""LangChain's ``ChatOpenAI`` with ``bind_tools``: a tool round trip, streamed and not; a
``strict=True`` tool; structured output by function calling (a named ``tool_choice``)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from devtools.stack import DevStack
from glm_relay.upstream.translate import PLACEHOLDER_REASONING
from mock_upstream.answer import expected_reasoning_chunks, expected_text, expected_tool_calls

NAMED_PERSON = "You must answer by calling the function Person, not with text, in this turn."


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def chat_model(
    stack: DevStack, model: str, asked: list[dict[str, Any]] | None = None
) -> ChatOpenAI:
    """``ChatOpenAI`` on ``/v1``; ``asked`` collects the request bodies LangChain sends."""

    def keep(request: httpx.Request) -> None:
        if asked is not None:
            asked.append(json.loads(request.content))

    return ChatOpenAI(
        model=model,
        base_url=stack.url + "/v1",
        api_key=stack.token,
        max_retries=0,
        timeout=30,
        http_client=httpx.Client(event_hooks={"request": [keep]}, timeout=30),
    )


@pytest.mark.parametrize(("model", "streamed"), [("glm-4.5", False), ("glm-4.7", True)])
def test_bind_tools_round_trip(stack: DevStack, sent, model: str, streamed: bool) -> None:
    bound = chat_model(stack, model).bind_tools([get_weather])
    question = HumanMessage("Weather in Paris please #tool=get_weather")
    if streamed:
        chunks = list(bound.stream([question]))
        ai = chunks[0]
        for chunk in chunks[1:]:
            ai = ai + chunk
        assert isinstance(ai, AIMessageChunk) and len(chunks) > 3
    else:
        ai = bound.invoke([question])
    (call,) = ai.tool_calls
    result = get_weather.invoke(call)
    final = bound.invoke([question, ai, result])

    first, second = sent()
    (expected,) = expected_tool_calls(first)
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert first.get("tool_stream", False) is streamed
    assert call["id"] == expected["id"] and call["name"] == "get_weather"
    assert call["args"] == json.loads(expected["function"]["arguments"])
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": expected["id"],
        "content": "Sunny in Weather in Paris please",
    }
    assert second["messages"][-2]["tool_calls"][0]["id"] == expected["id"]
    assert final.content == expected_text(second)
    assert str(final.content).startswith('get_weather returned "Sunny in Weather in Paris please".')


class Person(BaseModel):
    """Someone named in a text."""

    name: str
    age: int


def test_structured_output_by_function_calling_names_its_function(stack: DevStack, sent) -> None:
    asked: list[dict[str, Any]] = []
    structured = chat_model(stack, "glm-4.7", asked).with_structured_output(
        Person, method="function_calling"
    )
    person = structured.invoke("Ann is 31")

    assert asked[0]["tool_choice"] == {"type": "function", "function": {"name": "Person"}}

    (body,) = sent()
    assert [t["function"]["name"] for t in body["tools"]] == ["Person"]
    assert body["tool_choice"] == "auto"
    assert body["messages"][0] == {"role": "system", "content": NAMED_PERSON}
    assert person == Person(name="Ann is 31", age=1)


def test_a_strict_tool_is_accepted_and_its_call_checked(stack: DevStack, sent) -> None:
    asked: list[dict[str, Any]] = []
    bound = chat_model(stack, "glm-4.7", asked).bind_tools([get_weather], strict=True)
    ai = bound.invoke("Weather in Oslo #tool=get_weather")

    assert asked[0]["tools"][0]["function"]["strict"] is True

    (body,) = sent()
    assert "strict" not in body["tools"][0]["function"]
    assert body["tools"][0]["function"]["parameters"]["additionalProperties"] is False
    (call,) = ai.tool_calls
    assert call["args"] == {"city": "Weather in Oslo"}


def test_a_glm_5_1_tool_loop_works_though_langchain_drops_the_reasoning(
    stack: DevStack, sent
) -> None:
    """``ChatOpenAI`` on its defaults keeps no ``reasoning_content`` (not an OpenAI field): the
    second turn of the loop reaches the upstream with the placeholder and is answered."""
    bound = chat_model(stack, "glm-5.1").bind_tools([get_weather])
    question = HumanMessage("Weather in Paris please #tool=get_weather")
    ai = bound.invoke([question])
    (call,) = ai.tool_calls
    final = bound.invoke(
        [question, ai, ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])]
    )

    first, second = sent()
    assert "".join(expected_reasoning_chunks(first))  # the model reasoned before calling
    turn = second["messages"][-2]
    assert turn["tool_calls"][0]["id"] == call["id"]
    assert turn["reasoning_content"] == PLACEHOLDER_REASONING
    assert final.content == expected_text(second)
