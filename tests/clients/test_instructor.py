"""instructor on its default ``Mode.TOOLS`` over ``/v1``: a pydantic model extracted through a
function the ``tool_choice`` names.

instructor 1.17.0 pins ``jiter<0.15``, ``click>=8.3.3`` and ``rich<15``, which openai 3.57.0
(``jiter>=0.16``) and aws-sam-cli (its click) rule out in one environment, so ``make venv``
installs it from requirements-nodeps.txt with ``--no-deps``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import instructor
from openai import OpenAI
from pydantic import BaseModel

from devtools.stack import DevStack
from mock_upstream.answer import expected_tool_calls

NAMED = "You must answer by calling the function UserInfo, not with text, in this turn."


class UserInfo(BaseModel):
    name: str
    age: int


def test_a_model_is_extracted_through_the_named_function(stack: DevStack, sent) -> None:
    asked: list[dict[str, Any]] = []

    def keep(request: httpx.Request) -> None:
        asked.append(json.loads(request.content))

    http = httpx.Client(event_hooks={"request": [keep]}, timeout=30)
    openai_client = OpenAI(
        base_url=stack.url + "/v1", api_key=stack.token, max_retries=0, http_client=http
    )
    client = instructor.from_openai(openai_client)
    assert client.mode == instructor.Mode.TOOLS

    user = client.chat.completions.create(
        model="glm-4.7",
        response_model=UserInfo,
        messages=[{"role": "user", "content": "John Doe is 30 years old"}],
    )

    (request,) = asked
    assert request["tool_choice"] == {"type": "function", "function": {"name": "UserInfo"}}
    (body,) = sent()
    assert [t["function"]["name"] for t in body["tools"]] == ["UserInfo"]
    assert (body["tool_choice"], body["messages"][0]) == (
        "auto",
        {"role": "system", "content": NAMED},
    )
    (call,) = expected_tool_calls(body)
    assert json.loads(call["function"]["arguments"]) == {
        "name": "John Doe is 30 years old",
        "age": 1,
    }
    assert isinstance(user, UserInfo)
    assert user.model_dump() == {"name": "John Doe is 30 years old", "age": 1}
