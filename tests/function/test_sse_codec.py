"""The SSE decoder against the spec's edge cases; the encoder's frames as a client parses them."""

from __future__ import annotations

import json

import pytest

from glm_relay.errors import ErrorCode, RelayError
from glm_relay.sse import (
    MAX_LINE_BYTES,
    SSEDecoder,
    SSEProtocolError,
    dumps_data,
    encode_comment,
    encode_event,
)
from glm_relay.upstream.stream import UpstreamStream, plain_content

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


@pytest.mark.parametrize("value", ["²", "٣", "1٣", "+5", "  5", "5 ", ""])
def test_a_retry_field_of_anything_but_ascii_digits_is_ignored(value: str) -> None:
    """The spec reads ``retry`` only when it is ASCII digits; a superscript or Arabic-Indic digit
    passes ``str.isdigit`` and once broke the whole answer with a ValueError."""
    decoder = SSEDecoder()
    events = decoder.feed(f"retry:{value}\ndata: x\n\n".encode())
    assert [(e.data, e.retry) for e in events] == [("x", None)]


def test_a_line_longer_than_the_limit_is_refused_whole_or_in_pieces() -> None:
    """A line over ``MAX_LINE_BYTES`` is a protocol error, whether it arrives at once or in
    pieces that never end it: the decoder holds at most the limit, not whatever a server sends."""
    long_line = b"data: " + b"a" * MAX_LINE_BYTES + b"\n\n"
    with pytest.raises(SSEProtocolError, match="longer than"):
        SSEDecoder().feed(long_line)
    decoder = SSEDecoder()
    with pytest.raises(SSEProtocolError, match="longer than"):
        for _ in range(0, MAX_LINE_BYTES + 64 * 1024, 64 * 1024):
            decoder.feed(b"a" * 64 * 1024)


def test_a_line_at_the_limit_in_small_pieces_is_one_event() -> None:
    """Pieces of an unfinished line are kept, not joined again at every feed, and a line as
    long as the limit still decodes (with its CRLF split between two pieces)."""
    value = "b" * (MAX_LINE_BYTES - len("data: "))
    wire = f"data: {value}\r\n\r\n".encode()
    decoder = SSEDecoder()
    events = []
    for start in range(0, len(wire), 4096 - 1):
        events.extend(decoder.feed(wire[start : start + 4096 - 1]))
    assert [len(e.data) for e in events] == [len(value)]
    assert not decoder.has_partial_event


def test_an_over_long_upstream_line_ends_the_answer_as_an_upstream_protocol_error() -> None:
    """Through the upstream stream, the refusal is the catalogue's upstream protocol error (a
    502 the caller may retry), not an internal error."""
    stream = UpstreamStream.__new__(UpstreamStream)
    stream._decoder = SSEDecoder()
    with pytest.raises(RelayError) as raised:
        list(stream.parse(b"data: " + b"x" * (MAX_LINE_BYTES + 1)))
    assert raised.value.code is ErrorCode.UPSTREAM_PROTOCOL_ERROR
