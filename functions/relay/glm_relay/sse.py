"""Server-Sent Events on the byte level: an encoder for what we send, a decoder for what we read.

The decoder follows the WHATWG event-stream rules (LF, CR and CRLF line ends, comments, multi-line
data, ``id`` and ``retry`` fields, a leading BOM) and is incremental: bytes may be split anywhere,
even inside a CRLF pair or a UTF-8 sequence, because only complete lines are decoded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_LF = b"\n"
_CR = b"\r"
_CRLF = b"\r\n"
_BOM = "\ufeff"


def encode_event(event: str, data: str, event_id: str | None = None) -> bytes:
    """One event frame. ``data`` may hold newlines: each line becomes its own ``data:`` field.

    Example:
        encode_event("chat", '{"content":"Hi"}', "req-1:1")
        # b'id: req-1:1\\nevent: chat\\ndata: {"content":"Hi"}\\n\\n'
    """
    head = f"id: {event_id}\nevent: {event}\n" if event_id is not None else f"event: {event}\n"
    if "\n" in data or "\r" in data:
        lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        body = "".join(f"data: {line}\n" for line in lines)
    else:
        body = f"data: {data}\n"
    return (head + body + "\n").encode()


# Line separators JSON leaves raw but str.splitlines() splits on; some SSE clients read lines that
# way (the official Python SDKs do), so they are sent escaped.
SPLITLINES_ONLY = ("\u0085", "\u2028", "\u2029")


def dumps_data(value: Any) -> str:
    """Compact JSON for a ``data:`` field: one line for every SSE client.

    Example:
        dumps_data({"content": "a\u2028b"})  # '{"content":"a\\u2028b"}'
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for separator in SPLITLINES_ONLY:
        if separator in text:
            text = text.replace(separator, f"\\u{ord(separator):04x}")
    return text


def encode_comment(text: str) -> bytes:
    """A comment frame: ignored by EventSource, keeps idle connections and proxies open."""
    return f": {text}\n\n".encode()


# Sent after a silence, so proxies and browsers keep an idle stream open.
KEEPALIVE_FRAME = encode_comment("keepalive")


@dataclass(slots=True)
class ServerSentEvent:
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEProtocolError(ValueError):
    """The byte stream cannot be an event stream we read (a line over ``MAX_LINE_BYTES``).

    ``events`` are the ones the same ``feed`` completed before the bad line, in order.
    """

    def __init__(self, message: str, events: list[ServerSentEvent] | None = None) -> None:
        super().__init__(message)
        self.events = events or []


# A line longer than this is refused. An upstream data line is one JSON chunk: a few hundred
# bytes, tens of kilobytes with web search results, up to about a megabyte for a tool call whose
# arguments carry a whole file. Past the limit, holding the line is memory a server chose.
MAX_LINE_BYTES = 4 * 1024 * 1024


class SSEDecoder:
    """Turns a byte stream into events, whatever the chunking.

    Linear in what it is fed: line ends are looked for only in the new bytes, and the pieces of
    an unfinished line are kept apart and joined once, when the line ends.

    Example:
        decoder = SSEDecoder()
        for chunk in byte_chunks:
            for event in decoder.feed(chunk):
                handle(event)
    """

    __slots__ = (
        "_data",
        "_event",
        "_last_id",
        "_pending",
        "_pending_bytes",
        "_retry",
        "_skip_lf",
        "_started",
    )

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # the pieces of an incomplete last line
        self._pending_bytes = 0
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF completes a CRLF
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    @property
    def last_event_id(self) -> str | None:
        """The last ``id`` seen, which persists across events as the spec says."""
        return self._last_id

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume ``chunk`` and return the events it completed.

        Raises:
            SSEProtocolError: a line is longer than ``MAX_LINE_BYTES``.
        """
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == _LF:
                chunk = chunk[1:]
        if _CR in chunk:
            # Only the new bytes are normalized: the pending pieces hold no line end.
            self._skip_lf = chunk.endswith(_CR)
            chunk = chunk.replace(_CRLF, _LF).replace(_CR, _LF)
        lines = chunk.split(_LF)
        last = lines.pop()
        events: list[ServerSentEvent] = []
        if lines:
            if self._pending:
                self._pending.append(lines[0])
                self._check_length(self._pending_bytes + len(lines[0]))
                lines[0] = b"".join(self._pending)
                self._pending = []
                self._pending_bytes = 0
            for raw in lines:
                if len(raw) > MAX_LINE_BYTES:
                    self._check_length(len(raw), events)
                event = self._line(raw.decode("utf-8", errors="replace"))
                if event is not None:
                    events.append(event)
        if last:
            self._pending_bytes += len(last)
            self._check_length(self._pending_bytes, events)
            self._pending.append(last)
        return events

    @staticmethod
    def _check_length(size: int, events: list[ServerSentEvent] | None = None) -> None:
        if size > MAX_LINE_BYTES:
            message = f"an event stream line is longer than {MAX_LINE_BYTES} bytes"
            raise SSEProtocolError(message, events)

    def _line(self, line: str) -> ServerSentEvent | None:
        if not self._started:
            self._started = True
            if line.startswith(_BOM):
                line = line[1:]
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        name, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            # An event with no data field is not dispatched; its type is reset.
            self._event = ""
            return None
        event = ServerSentEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self._last_id,
            retry=self._retry,
        )
        self._data = []
        self._event = ""
        return event

    @property
    def has_partial_event(self) -> bool:
        """Whether bytes or fields are waiting for a blank line (the stream was cut mid-event)."""
        return bool(self._pending or self._data)
