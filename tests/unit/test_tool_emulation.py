"""The tool settings Zhipu lacks, on a ``ChatRequest`` built directly (as every front end builds
it): what the translation sends, and what the call rules let through of an answer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from glm_relay.chat.call_rules import RuledStream, with_call_rules
from glm_relay.chat.pieces import Finish, Piece, TextPiece, ToolCallPiece
from glm_relay.chat.request import ChatRequest, check_tool_choice
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.upstream.translate import zhipu_body

PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}}
WEATHER = {"type": "function", "function": {"name": "weather", "parameters": PARAMS}}
STRICT = {"type": "function", "function": {"name": "weather", "parameters": PARAMS, "strict": True}}
TIME = {"type": "function", "function": {"name": "time"}}
SEARCH = {"type": "web_search", "web_search": {"enable": True}}
USER = [{"role": "user", "content": "hi"}]


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest(model="glm-4.7", messages=USER, max_tokens=100, **fields)


def test_strict_is_not_sent_and_only_auto_is() -> None:
    body = zhipu_body(chat(tools=(STRICT, TIME, SEARCH), tool_choice="auto"), "req-000001")

    assert body["tools"] == [WEATHER, TIME, SEARCH]
    assert body["tool_choice"] == "auto"
    assert body["messages"] == USER


def test_required_is_an_instruction_beside_auto() -> None:
    body = zhipu_body(chat(tools=(STRICT, TIME), tool_choice="required"), "req-000001")

    assert (body["tools"], body["tool_choice"]) == ([WEATHER, TIME], "auto")
    assert body["messages"][0]["role"] == "system"
    assert "calling one of the provided functions" in body["messages"][0]["content"]


@pytest.mark.parametrize("choice", [None, "auto", "required"])
def test_a_named_function_is_offered_alone_whatever_tool_choice_says(choice: str | None) -> None:
    request = chat(tools=(STRICT, TIME, SEARCH), tool_choice=choice, tool_choice_name="time")
    body = zhipu_body(request, "req-000001")

    assert (body["tools"], body["tool_choice"]) == ([TIME], "auto")
    assert "calling the function time" in body["messages"][0]["content"]


def test_a_named_function_must_be_offered_and_required_needs_a_function() -> None:
    with pytest.raises(RelayError) as named:
        check_tool_choice(chat(tools=(TIME,), tool_choice_name="weather"))
    with pytest.raises(RelayError) as required:
        check_tool_choice(chat(tools=(SEARCH,), tool_choice="required"))

    assert named.value.code == required.value.code == ErrorCode.INVALID_PARAMETER


@pytest.mark.parametrize(("asked", "sent"), [(0.0, 0.0), (0.7, 0.7), (1.0, 1.0), (1.5, 1.0)])
def test_temperature_above_zhipu_s_range_is_sent_as_its_top(asked: float, sent: float) -> None:
    assert zhipu_body(chat(temperature=asked), "req-000001")["temperature"] == sent


class Source:
    """An answer stream whose ``parse`` hands out prepared pieces, one list per read."""

    attempts = 1

    def __init__(self, *batches: list[Piece | Finish]) -> None:
        self._batches = list(batches)

    async def read(self) -> bytes:
        return b"x"

    def parse(self, data: bytes) -> Iterable[Piece | Finish]:
        return self._batches.pop(0)

    async def aclose(self) -> None:
        pass


def finish(reason: str = "tool_calls") -> Finish:
    return Finish(reason, None, None, None)


def call(index: int, arguments: str, name: str | None = None) -> ToolCallPiece:
    delta: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if name is not None:
        delta.update(id=f"call_{index}", type="function")
        delta["function"]["name"] = name
    return ToolCallPiece(delta)


def run(stream: Any) -> list[Piece | Finish]:
    out: list[Piece | Finish] = []
    for _ in range(len(stream._source._batches)):
        out.extend(stream.parse(b"x"))
    return out


def test_no_rule_means_the_stream_itself() -> None:
    source = Source()
    assert with_call_rules(source, chat(tools=(WEATHER,))) is source


def test_parallel_false_keeps_the_first_call_whole_or_in_fragments() -> None:
    whole = [call(0, '{"city": "a"}', "weather"), call(1, "{}", "time")]
    fragments = [call(0, "", "weather"), call(0, '{"city"'), call(1, "", "time"), call(0, ': "a"}')]
    for pieces in (whole, fragments):
        stream = with_call_rules(Source(pieces, [finish()]), chat(parallel_tool_calls=False))
        out = run(stream)

        kept = [p.call for p in out if isinstance(p, ToolCallPiece)]
        assert [c["index"] for c in kept] == [0] * len(kept)
        assert "".join(c["function"]["arguments"] for c in kept) == '{"city": "a"}'
        assert out[-1] == finish()


@pytest.mark.parametrize(
    ("arguments", "reason", "fails"),
    [
        ('{"city": "a"}', "tool_calls", False),
        ('{"city": "a"', "tool_calls", True),
        ("[1]", "tool_calls", True),
        ("", "stop", True),
        ('{"city": "a"', "length", False),  # the finish already says it was cut
    ],
)
def test_strict_arguments_must_be_a_json_object(arguments: str, reason: str, fails: bool) -> None:
    pieces: list[Piece | Finish] = [TextPiece("x"), call(0, arguments, "weather")]
    stream = with_call_rules(Source(pieces, [finish(reason)]), chat(tools=(STRICT,)))
    assert isinstance(stream, RuledStream)
    out = run(stream)

    last = out[-1]
    assert isinstance(last, Finish) and last.finish_reason == reason
    assert out[:-1] == pieces  # every piece passes; only the end can change
    failure = last.failure
    assert (failure is not None) is fails
    if failure is not None:
        assert failure.code is ErrorCode.TOOL_ARGUMENTS_INVALID
        assert "'weather'" in failure.message


def test_a_call_to_a_function_that_is_not_strict_is_not_checked() -> None:
    pieces: list[Piece | Finish] = [call(0, "{", "time")]
    stream = with_call_rules(Source(pieces, [finish()]), chat(tools=(STRICT, TIME)))
    assert run(stream)[-1] == finish()


def test_a_dropped_call_is_not_checked() -> None:
    pieces: list[Piece | Finish] = [call(0, "{}", "weather"), call(1, "{", "weather")]
    request = chat(tools=(STRICT,), parallel_tool_calls=False)
    out = run(with_call_rules(Source(pieces, [finish()]), request))
    assert out == [pieces[0], finish()]
