"""The Responses event state machine on recorded piece sequences: no relay loop, no sockets.

Each sequence is what the upstream reader yields for one answer of the fake Zhipu (reasoning,
text, tool calls whole or in ``tool_stream`` fragments, web search results, then the finish);
the tests read the frames back as SSE events and check their order, their sequence numbers,
the items and the one terminal event.
"""

from __future__ import annotations

import json
from typing import Any

from glm_relay.chat.pieces import (
    Finish,
    Piece,
    ReasoningPiece,
    SearchPiece,
    TextPiece,
    ToolCallPiece,
)
from glm_relay.chat.relay import Outcome
from glm_relay.chat.sealed import ReasoningSeal
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.sse import KEEPALIVE_FRAME
from glm_relay.web.responses.events import ResponsesEvents
from glm_relay.web.responses.objects import ResponseHead
from glm_relay.web.responses.tools import translate_tools

USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 9,
    "total_tokens": 21,
    "completion_tokens_details": {"reasoning_tokens": 3},
}
OUTCOME = Outcome("req-1", "glm-5.1", 0.0)
REASONING_THEN_TEXT: list[Piece] = [
    ReasoningPiece("The user "),
    ReasoningPiece("greets me."),
    TextPiece("Hello", '"Hello"'),
    TextPiece(" there\u2028!", '" there\u2028!"'),  # a raw separator: re-encoded
]
# tool_stream: a head with id and name, then argument fragments keyed by index.
STREAMED_CALLS: list[Piece] = [
    ReasoningPiece("Call it."),
    ToolCallPiece(
        {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather"}}
    ),
    ToolCallPiece({"index": 0, "function": {"arguments": '{"city": '}}),
    ToolCallPiece({"index": 0, "function": {"arguments": '"Paris"}'}}),
    ToolCallPiece(
        {"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_time"}}
    ),
    ToolCallPiece({"index": 1, "function": {"arguments": "{}"}}),
]


def finish(reason: str = "stop", failure: RelayError | None = None) -> Finish:
    return Finish(reason, USAGE, "glm-5.1", "up-1", failure)


def events_of(frames: bytes) -> list[dict[str, Any]]:
    """The SSE events in ``frames`` (``event:`` must name the data's ``type``)."""
    out = []
    for block in frames.decode().split("\n\n"):
        if not block or block.startswith(":"):
            continue
        (event_line, data_line) = block.split("\n")
        data = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}"
        out.append(data)
    return out


def play(
    pieces: list[Piece],
    end: Finish | RelayError,
    *,
    tools: list[dict[str, Any]] | None = None,
    seal: ReasoningSeal | None = None,
) -> tuple[list[dict[str, Any]], ResponsesEvents]:
    _, names = translate_tools(tools, Settings())
    wire = ResponsesEvents(ResponseHead("resp_req1", 1_700_000_000, "glm-5.1", True), names, seal)
    frames = wire.opening() or b""
    for piece in pieces:
        frames += wire.piece(piece)
    frames += wire.keepalive()
    frames += wire.done(end, OUTCOME) if isinstance(end, Finish) else wire.error(end)
    assert "\u2028" not in frames.decode()  # raw in JSON, but a line break to some SSE readers
    events = events_of(frames)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    terminals = {"response.completed", "response.incomplete", "response.failed"}
    assert [e["type"] in terminals for e in events].count(True) == 1
    assert events[-1]["type"] in terminals
    return events, wire


def test_reasoning_then_text_opens_and_closes_each_item_in_order():
    events, wire = play(REASONING_THEN_TEXT, finish())

    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert deltas == ["Hello", " there\u2028!"]
    final = events[-1]["response"]
    reasoning, message = final["output"]
    assert reasoning == {
        "id": "rs_req1000",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "The user greets me."}],
    }
    assert message["id"] == "msg_req1001" and message["status"] == "completed"
    assert message["content"] == [
        {"type": "output_text", "text": "Hello there\u2028!", "annotations": []}
    ]
    assert final["status"] == "completed"
    assert final["usage"] == {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 9,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 21,
    }
    assert wire.turn == {
        "role": "assistant",
        "content": "Hello there\u2028!",
        "reasoning_content": "The user greets me.",
    }


def test_streamed_tool_calls_become_function_call_items_with_argument_deltas():
    events, wire = play(STREAMED_CALLS, finish("tool_calls"))

    kinds = [e["type"] for e in events]
    assert kinds.count("response.function_call_arguments.delta") == 3
    first_done = kinds.index("response.function_call_arguments.done")
    assert kinds.index("response.output_item.added", 5) < first_done
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    assert [(i["type"], i.get("name")) for i in added] == [
        ("reasoning", None),
        ("function_call", "get_weather"),
        ("function_call", "get_time"),
    ]
    calls = events[-1]["response"]["output"][1:]
    assert calls == [
        {
            "type": "function_call",
            "id": "fc_req1001",
            "call_id": "call_a",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
            "status": "completed",
        },
        {
            "type": "function_call",
            "id": "fc_req1002",
            "call_id": "call_b",
            "name": "get_time",
            "arguments": "{}",
            "status": "completed",
        },
    ]
    assert wire.turn is not None and [c["id"] for c in wire.turn["tool_calls"]] == [
        "call_a",
        "call_b",
    ]


def test_a_whole_call_to_a_namespaced_custom_or_shell_tool_comes_back_as_its_own_kind():
    tools = [
        {"type": "namespace", "name": "agents", "tools": [{"type": "function", "name": "wait"}]},
        {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "definition": "x"}},
        {"type": "local_shell"},
        {"type": "web_search", "external_web_access": False},
        {"type": "image_generation"},
    ]
    pieces: list[Piece] = [
        ToolCallPiece(
            {
                "index": 0,
                "id": "c0",
                "function": {"name": "agents__wait", "arguments": '{"targets": ["a"]}'},
            }
        ),
        ToolCallPiece(
            {
                "index": 1,
                "id": "c1",
                "function": {"name": "apply_patch", "arguments": '{"input": "*** Begin"}'},
            }
        ),
        ToolCallPiece(
            {
                "index": 2,
                "id": "c2",
                "function": {
                    "name": "local_shell",
                    "arguments": '{"command": ["ls", "-l"], "workdir": "/tmp"}',
                },
            }
        ),
    ]
    events, _ = play(pieces, finish("tool_calls"), tools=tools)

    assert "response.function_call_arguments.delta" in [e["type"] for e in events]
    namespaced, custom, shell = events[-1]["response"]["output"]
    assert (namespaced["type"], namespaced["name"], namespaced["namespace"]) == (
        "function_call",
        "wait",
        "agents",
    )
    assert custom == {
        "type": "custom_tool_call",
        "id": "ctc_req1001",
        "call_id": "c1",
        "name": "apply_patch",
        "input": "*** Begin",
        "status": "completed",
    }
    assert shell["type"] == "local_shell_call" and shell["call_id"] == "c2"
    assert shell["action"]["command"] == ["ls", "-l"]
    assert shell["action"]["working_directory"] == "/tmp"


def test_the_output_cap_ends_incomplete_and_the_content_filter_too():
    events, _ = play([TextPiece("Hel")], finish("length"))
    assert events[-1]["type"] == "response.incomplete"
    final = events[-1]["response"]
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["status"] == "incomplete"

    filtered = RelayError(ErrorCode.CONTENT_FILTERED, "filtered")
    events, _ = play([TextPiece("Hel")], finish("sensitive", filtered))
    assert events[-1]["response"]["incomplete_details"] == {"reason": "content_filter"}


def test_a_failure_ends_with_response_failed_carrying_the_relay_code():
    stalled = RelayError(ErrorCode.UPSTREAM_STALLED, "the upstream sent nothing")
    events, wire = play([TextPiece("Hel")], stalled)

    final = events[-1]
    assert final["type"] == "response.failed"
    assert events[-2]["type"] == "response.output_item.done"  # what was written is closed
    assert final["response"]["output"][0]["status"] == "incomplete"
    assert final["response"]["output"][0]["content"][0]["text"] == "Hel"
    assert final["response"]["status"] == "failed"
    assert final["response"]["error"] == {"code": "upstream_stalled", "message": stalled.message}
    assert wire.failure is stalled

    network = RelayError(ErrorCode.UPSTREAM_NETWORK_ERROR, "the inference failed")
    events, _ = play(STREAMED_CALLS[:3], finish("network_error", network))
    assert events[-1]["response"]["error"]["code"] == "upstream_network_error"
    call = events[-1]["response"]["output"][-1]
    assert call["status"] == "incomplete"  # a half-written call is never passed off as whole
    assert call["arguments"] == '{"city": '


def test_sealed_reasoning_rides_on_the_reasoning_item_when_asked():
    seal = ReasoningSeal(bytes(32))
    events, _ = play(REASONING_THEN_TEXT, finish(), seal=seal)

    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    opened = seal.open(done[0]["encrypted_content"])
    assert opened is not None
    assert (opened.model, opened.reasoning) == ("glm-5.1", "The user greets me.")


def test_search_results_are_a_web_search_call_item_before_the_text():
    results = [{"title": "Otters", "link": "https://example.org/otters"}]
    events, _ = play([SearchPiece(results, alone=True), TextPiece("Otters")], finish())

    search, message = events[-1]["response"]["output"]
    assert search["type"] == "web_search_call" and search["status"] == "completed"
    assert search["action"]["sources"] == [
        {"type": "url", "url": "https://example.org/otters", "title": "Otters"}
    ]
    assert message["type"] == "message"


def test_keepalives_are_comments_outside_the_sequence():
    _, names = translate_tools(None, Settings())
    wire = ResponsesEvents(ResponseHead("resp_x", 0, "glm-5.1", False), names, None)
    assert wire.keepalive() == KEEPALIVE_FRAME
