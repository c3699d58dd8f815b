"""The SSE decoder against the spec's edge cases; the encoder's frames as a client parses them."""

from __future__ import annotations

import json

import pytest

from glm_relay.sse import SSEDecoder, dumps_data, encode_comment, encode_event
from glm_relay.upstream.stream import plain_content

STREAM = (
    b"\xef\xbb\xbf: a comment\r\n"
    b"data: first\r\n\r\n"
    b"event: custom\rid: 7\rdata: line one\rdata: line two\r\r"
    b"data:no-space\n\n"
    b'retry: 1500\ndata: {"text": "\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80"}\n\n'
    b"event: ignored-without-data\n\n"
    b"data: last\n\n"
)


def decode_all(chunks: list[bytes]) -> list[tuple[str, str, str | None]]:
    decoder = SSEDecoder()
    events = []
    for chunk in chunks:
        events.extend((e.event, e.data, e.id) for e in decoder.feed(chunk))
    return events


EXPECTED = [
    ("message", "first", None),
    ("custom", "line one\nline two", "7"),
    ("message", "no-space", "7"),
    ("message", '{"text": "你好 😀"}', "7"),
    ("message", "last", "7"),
]


def test_whole_stream_decodes_to_the_spec_events() -> None:
    assert decode_all([STREAM]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_any_chunking_gives_the_same_events(size: int) -> None:
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert decode_all(chunks) == EXPECTED


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    assert decode_all([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]) == [("message", "a\nb", None)]


def test_cut_mid_event_is_reported_and_not_dispatched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: complete\n\ndata: partial") != []
    assert decoder.has_partial_event


def test_encoded_frames_round_trip_any_text() -> None:
    text = 'line\nbreak\rcarriage "quotes" \\ back 你好 🎉'
    frame = encode_event("chat", json.dumps({"content": text}, ensure_ascii=False), "r:1")
    frame += encode_comment("keepalive")
    frame += encode_event("raw", "a\nb\r\nc", "r:2")
    events = decode_all([frame])
    assert json.loads(events[0][1]) == {"content": text}
    assert events[0][0] == "chat" and events[0][2] == "r:1"
    assert events[1] == ("raw", "a\nb\nc", "r:2")


def test_data_json_escapes_separators_that_line_splitting_clients_break_on() -> None:
    text = "a\u2028b\u2029c\u0085d"
    data = dumps_data({"content": text})

    assert data.splitlines() == [data]
    assert json.loads(data) == {"content": text}


def _upstream_chunk(content: str, **extra: object) -> str:
    choice = {"index": 0, "delta": {"role": "assistant", "content": content}, **extra}
    body = {"id": "1", "created": 1, "model": "glm-4", "choices": [choice]}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize(
    "content", ["plain", 'quote " and \\ backslash', "line\nbreak\r", "你好 😀", "\u2028", ""]
)
def test_plain_chunks_take_the_fast_path_with_the_same_content(content: str) -> None:
    data = _upstream_chunk(content)
    piece = plain_content(data)

    assert piece is not None and piece.text == json.loads(data)["choices"][0]["delta"]["content"]
    assert piece.literal is not None and json.loads(piece.literal) == content


def test_chunks_of_other_shapes_take_the_general_path() -> None:
    assert plain_content(_upstream_chunk("x", finish_reason="stop")) is None
    assert (
        plain_content('{"choices":[{"index":0,"delta":{"content":"x","role":"assistant"}}]}')
        is None
    )
    assert (
        plain_content('{"choices":[{"index":0,"delta":{"role":"assistant","content":"a"b"}}]}')
        is None
    )
