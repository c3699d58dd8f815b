"""LangChain's ``ChatOpenAI`` with ``use_responses_api=True``: a tool round trip on a model that
reasons, the AI message (with its reasoning and call items) sent back as LangChain sends it."""

from __future__ import annotations

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from devtools.stack import DevStack
from mock_upstream.answer import expected_reasoning_chunks, expected_text, expected_tool_calls


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def test_tool_round_trip_over_the_responses_api(stack: DevStack, sent) -> None:
    model = ChatOpenAI(
        model="glm-5.1",
        base_url=stack.url + "/v1",
        api_key=stack.token,
        use_responses_api=True,
        max_retries=0,
    ).bind_tools([get_weather])
    question = HumanMessage("Weather in Paris #tool=get_weather")
    asked = model.invoke([question])
    (call,) = asked.tool_calls
    result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
    answer = model.invoke([question, asked, result])

    first, second = sent()
    (expected,) = expected_tool_calls(first)
    assert call["name"] == "get_weather" and call["id"] == expected["id"]
    turn, output = second["messages"][-2:]
    assert turn["tool_calls"][0]["id"] == expected["id"]
    assert turn["reasoning_content"] == "".join(expected_reasoning_chunks(first))
    assert output == {"role": "tool", "tool_call_id": expected["id"], "content": result.content}
    assert answer.text == expected_text(second)
