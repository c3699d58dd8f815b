"""The Messages stream state machine on recorded piece sequences: blocks open and close in
order, thinking ends in a signature that opens to its text, tool calls become tool_use blocks
with input_json_delta pieces, and every stream ends in one message_stop or one error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from glm_relay.chat.pieces import Finish, ReasoningPiece, TextPiece, ToolCallPiece
from glm_relay.chat.relay import Outcome
from glm_relay.chat.sealed import ReasoningSeal
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.web.anthropic.endpoints import unsealer
from glm_relay.web.anthropic.events import MessageStream, usage

SEAL = ReasoningSeal(b"s" * 32)
UNSEAL = unsealer(SEAL)


def seal(text: str) -> str:
    return SEAL.seal("glm-5.1", text)


USAGE = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}


def events(frames: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) of each frame; every frame has exactly one event and one data line."""
    out = []
    for frame in frames.decode().split("\n\n")[:-1]:
        event, data = frame.split("\n")
        assert event.startswith("event: ") and data.startswith("data: ")
        out.append((event[7:], json.loads(data[6:])))
    return out


def run(pieces: list[Any], finish: Finish | None, *, show: bool = True) -> list[tuple[str, Any]]:
    wire = MessageStream("msg_1", "glm-5.1", 5, seal, show_thinking=show)
    frames = wire.opening() or b""
    for piece in pieces:
        frames += wire.piece(piece)
    if finish is not None:
        frames += wire.done(finish, Outcome("r", "glm-5.1", 0.0))
    return events(frames)


def finish(reason: str = "stop", failure: RelayError | None = None) -> Finish:
    return Finish(reason, USAGE, "glm-5.1", "up-1", failure)


def test_thinking_then_text_are_two_blocks_and_the_signature_seals_the_reasoning() -> None:
    got = run(
        [
            ReasoningPiece("Let me "),
            ReasoningPiece("think."),
            TextPiece("Hi", '"Hi"'),
            TextPiece("!"),
        ],
        finish(),
    )
    names = [name for name, _ in got]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",  # signature_delta
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = got[0][1]["message"]
    assert start["usage"] == {"input_tokens": 5, "output_tokens": 0}
    assert start["content"] == [] and start["stop_reason"] is None
    assert got[1][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    thinking = [d["delta"]["thinking"] for _, d in got[2:4]]
    assert thinking == ["Let me ", "think."]
    signature = got[4][1]["delta"]
    assert signature["type"] == "signature_delta"
    assert UNSEAL(signature["signature"]) == "Let me think."
    assert got[5][1] == {"type": "content_block_stop", "index": 0}
    assert got[6][1]["index"] == 1 and got[6][1]["content_block"]["type"] == "text"
    assert [d["delta"] for _, d in got[7:9]] == [
        {"type": "text_delta", "text": "Hi"},
        {"type": "text_delta", "text": "!"},
    ]
    assert got[10][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "input_tokens": 12,
            "output_tokens": 7,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def test_omitted_thinking_streams_only_the_signature() -> None:
    got = run([ReasoningPiece("secret"), TextPiece("ok")], finish(), show=False)
    deltas = [d["delta"]["type"] for name, d in got if name == "content_block_delta"]
    assert deltas == ["signature_delta", "text_delta"]


def test_streamed_tool_calls_are_tool_use_blocks_in_order() -> None:
    pieces = [
        ToolCallPiece({"index": 0, "id": "call_a", "type": "function", "function": {"name": "f"}}),
        ToolCallPiece({"index": 0, "function": {"arguments": '{"x": '}}),
        ToolCallPiece({"index": 0, "function": {"arguments": "1}"}}),
        ToolCallPiece({"index": 1, "id": "call_b", "type": "function", "function": {"name": "g"}}),
        ToolCallPiece({"index": 1, "function": {"arguments": "{}"}}),
    ]
    got = run(pieces, finish("tool_calls"))
    starts = [d["content_block"] for name, d in got if name == "content_block_start"]
    assert starts == [
        {"type": "tool_use", "id": "call_a", "name": "f", "input": {}},
        {"type": "tool_use", "id": "call_b", "name": "g", "input": {}},
    ]
    by_block: dict[int, str] = {}
    for name, data in got:
        if name == "content_block_delta":
            assert data["delta"]["type"] == "input_json_delta"
            by_block[data["index"]] = (
                by_block.get(data["index"], "") + data["delta"]["partial_json"]
            )
    assert by_block == {0: '{"x": 1}', 1: "{}"}
    assert got[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_a_whole_tool_call_is_one_block_with_its_arguments() -> None:
    call = {"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    got = run([TextPiece("Let me check."), ToolCallPiece(call)], finish("tool_calls"))
    names = [(n, d.get("content_block", d.get("delta", {})).get("type")) for n, d in got]
    assert names[1:8] == [
        ("content_block_start", "text"),
        ("content_block_delta", "text_delta"),
        ("content_block_stop", None),
        ("content_block_start", "tool_use"),
        ("content_block_delta", "input_json_delta"),
        ("content_block_stop", None),
        ("message_delta", None),
    ]


def test_interleaved_tool_calls_are_a_protocol_error() -> None:
    wire = MessageStream("m", "glm-5.1", 0, seal)
    wire.piece(ToolCallPiece({"index": 0, "id": "a", "function": {"name": "f"}}))
    wire.piece(ToolCallPiece({"index": 1, "id": "b", "function": {"name": "g"}}))
    with pytest.raises(RelayError) as raised:
        wire.piece(ToolCallPiece({"index": 0, "function": {"arguments": "{}"}}))
    assert raised.value.code is ErrorCode.UPSTREAM_PROTOCOL_ERROR


@pytest.mark.parametrize(
    ("reason", "stop"),
    [
        ("length", "max_tokens"),
        ("model_context_window_exceeded", "model_context_window_exceeded"),
        ("stop", "end_turn"),
    ],
)
def test_finish_reasons_are_anthropic_stop_reasons(reason: str, stop: str) -> None:
    got = run([TextPiece("a")], finish(reason))
    assert got[-2][1]["delta"]["stop_reason"] == stop
    assert got[-1] == ("message_stop", {"type": "message_stop"})


def test_the_content_filter_is_a_refusal_and_other_failures_one_error_event() -> None:
    filtered = RelayError(ErrorCode.CONTENT_FILTERED, "filtered")
    got = run([TextPiece("a")], finish("sensitive", filtered))
    assert got[-2][1]["delta"]["stop_reason"] == "refusal"
    failed = RelayError(ErrorCode.UPSTREAM_ERROR, "the model failed")
    got = run([TextPiece("a")], finish("network_error", failed))
    assert [name for name, _ in got][-2:] == ["content_block_delta", "error"]
    assert got[-1][1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "upstream_error: the model failed"},
    }


def test_an_error_after_the_start_is_the_only_terminal_event() -> None:
    wire = MessageStream("m", "glm-5.1", 0, seal)
    frames = (wire.opening() or b"") + wire.piece(TextPiece("a"))
    frames += wire.error(RelayError(ErrorCode.UPSTREAM_STALLED, "silent"))
    names = [name for name, _ in events(frames)]
    assert names == ["message_start", "content_block_start", "content_block_delta", "error"]


def test_keepalives_are_pings_and_line_separators_stay_escaped() -> None:
    wire = MessageStream("m", "glm-5.1", 0, seal)
    assert events(wire.keepalive()) == [("ping", {"type": "ping"})]
    wire.opening()
    frame = wire.piece(TextPiece("a\u2028b", '"a\u2028b"'))
    assert "\u2028" not in frame.decode()
    assert events(frame)[-1][1]["delta"]["text"] == "a\u2028b"


def test_usage_counts_cached_prompt_tokens_as_cache_reads() -> None:
    cached = {**USAGE, "prompt_tokens_details": {"cached_tokens": 10}}
    assert usage(cached, 3) == {
        "input_tokens": 2,
        "output_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 10,
    }
    assert usage(None, 3) == {"input_tokens": 3, "output_tokens": 0}


def whole(reasoning: str, calls: list[dict[str, Any]], *, show: bool) -> dict[str, Any]:
    from glm_relay.web.anthropic.events import message_head, whole_message

    return whole_message(
        message_head("msg_1", "glm-5.1"),
        reasoning=reasoning,
        text="",
        calls=calls,
        finish=finish("tool_calls"),
        input_estimate=5,
        seal=seal,
        show_thinking=show,
    )


def test_a_whole_message_has_the_blocks_a_stream_would_have() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    message = whole("Think.", [call], show=False)
    thinking, tool_use = message["content"]
    assert thinking["thinking"] == "" and UNSEAL(thinking["signature"]) == "Think."
    assert tool_use == {"type": "tool_use", "id": "c1", "name": "f", "input": {"x": 1}}
    assert message["stop_reason"] == "tool_use" and message["usage"]["input_tokens"] == 12
    broken = {**call, "function": {"name": "f", "arguments": '{"x": '}}
    with pytest.raises(RelayError) as raised:
        whole("", [broken], show=True)
    assert raised.value.code is ErrorCode.UPSTREAM_PROTOCOL_ERROR
