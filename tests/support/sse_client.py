"""A deliberately simple SSE reader for tests, independent of the relay's own decoder.

It reads the raw bytes a client receives, records when each HTTP chunk arrived, and splits them
into events the way a browser would for the frames the relay sends (LF line ends).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Event:
    event: str
    data: str
    id: str | None
    received_at: float  # time.time() when the bytes that completed it arrived

    @property
    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class StreamResult:
    status: int
    headers: httpx.Headers
    raw: bytes = b""
    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    chunk_times: list[float] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [e.event for e in self.events]

    @property
    def text(self) -> str:
        return "".join(e.json["content"] for e in self.events if e.event == "chat")

    @property
    def terminal(self) -> Event:
        return self.events[-1]

    def only_terminal_is_last(self) -> bool:
        terminals = [i for i, e in enumerate(self.events) if e.event in ("done", "error")]
        return terminals == [len(self.events) - 1]


def parse_frames(buffer: bytes, result: StreamResult, now: float) -> bytes:
    """Take complete frames off ``buffer`` into ``result``; return the rest."""
    while b"\n\n" in buffer:
        frame, buffer = buffer.split(b"\n\n", 1)
        name, data, event_id = "message", [], None
        for line in frame.decode("utf-8").split("\n"):
            if line.startswith(":"):
                result.comments.append(line[1:].strip())
                continue
            key, _, value = line.partition(": ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
            elif key == "id":
                event_id = value
        if data:
            result.events.append(Event(name, "\n".join(data), event_id, now))
    return buffer


def read_stream(
    client: httpx.Client, method: str, url: str, *, timeout: float = 30, **kwargs: Any
) -> StreamResult:
    """Send the request and read the whole answer, frame by frame, as it arrives."""
    headers = {"Accept": "text/event-stream", **kwargs.pop("headers", {})}
    with client.stream(method, url, headers=headers, timeout=timeout, **kwargs) as response:
        result = StreamResult(response.status_code, response.headers)
        buffer = b""
        for chunk in response.iter_raw():
            now = time.time()
            result.chunk_times.append(now)
            result.raw += chunk
            buffer = parse_frames(buffer + chunk, result, now)
    return result
