"""The placeholder reasoning on a tool-call turn sent back without its own: added exactly where
the model would refuse the turn (GLM-5.1 and later, thinking on), and the body then passes the
fake upstream's checks (which are the real API's); reasoning that was sent goes as it came."""

from __future__ import annotations

from typing import Any

import pytest

from glm_relay.chat.models import CATALOGUE, unlisted
from glm_relay.chat.request import ChatRequest
from glm_relay.upstream.translate import PLACEHOLDER_REASONING, zhipu_body
from mock_upstream.catalogue import CATALOGUE as MOCK_CATALOGUE
from mock_upstream.options import MockOptions
from mock_upstream.validation import validate

WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {}}}


def _turn(call_id: str, **reasoning: Any) -> dict[str, Any]:
    call = {"id": call_id, "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    return {"role": "assistant", "content": "", "tool_calls": [call], **reasoning}


HISTORY = [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    _turn("call_1"),
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    _turn("call_2", reasoning_content=""),
    {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
    _turn("call_3", reasoning_content="Rome next."),
    {"role": "tool", "tool_call_id": "call_3", "content": "clouds"},
    {"role": "assistant", "content": "Done."},
]


def _body(model: str, thinking: str | None) -> dict[str, Any]:
    spec = CATALOGUE[model]
    chat = ChatRequest(
        model=model,
        messages=HISTORY,
        max_tokens=100,
        tools=(WEATHER,),
        thinking=thinking,
        spec=spec,
    )
    return zhipu_body(chat, "req-000001")


CASES = [
    (model, thinking)
    for model, spec in CATALOGUE.items()
    for thinking in (None, "enabled", "disabled")
    if not (spec.thinking == "none" and thinking == "enabled")
    and not (spec.thinking == "always" and thinking == "disabled")
]


@pytest.mark.parametrize(("model", "thinking"), CASES)
def test_the_placeholder_goes_where_the_upstream_would_refuse_and_nowhere_else(
    model: str, thinking: str | None
) -> None:
    body = _body(model, thinking)
    filled = MOCK_CATALOGUE[model].needs_call_reasoning and thinking != "disabled"

    if filled:
        reasoning = [m.get("reasoning_content") for m in body["messages"]]
        placeholder = PLACEHOLDER_REASONING
        assert reasoning == [None, placeholder, None, placeholder, None, "Rome next.", None, None]
    else:
        assert body["messages"] == HISTORY
    validate({**body, "stream": True}, MockOptions(api_key="id.secret", models=tuple(CATALOGUE)))


def test_a_model_the_catalogue_does_not_know_gets_the_history_as_sent() -> None:
    chat = ChatRequest(
        model="glm-9", messages=HISTORY, max_tokens=100, thinking="enabled", spec=unlisted("glm-9")
    )
    assert zhipu_body(chat, "req-000001")["messages"] == HISTORY
