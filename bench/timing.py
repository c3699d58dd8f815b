"""The timing client, and the requests it sends.

A plain blocking socket (over TLS for the HTTPS fake Zhipu): it stamps each ``recv`` with
``time.time_ns()`` the moment it returns, which is what "the chunk arrived" means, with no HTTP
library in between. A request is timed from its first byte sent, after the connection (and its
TLS handshake) is set up, so a relay's pooled upstream connection and a direct new one compare
alike.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

API_KEY = "benchid.0123456789abcdef0123456789abcdef"
# Answers up to 5,000 chunks must not be cut by max_tokens (one token per chunk).
MAX_TOKENS_CAP = "10000"
# A model that writes more than 5,000 tokens and answers without reasoning unless asked, so every
# chunk timed is answer text.
BENCH_MODEL = "glm-4-32b-0414-128k"
STAMP = re.compile(rb'"content":"(\d{19}) "')


# --- the timing client ------------------------------------------------------------------------


@dataclass
class Timing:
    """What the client saw of one streamed answer."""

    sent_ns: int = 0
    first_content_ns: int | None = None
    end_ns: int = 0
    stamps: list[tuple[int, int]] = field(default_factory=list)  # (sent by upstream, received)
    contents: int = 0
    raw_bytes: int = 0

    @property
    def latencies_ms(self) -> list[float]:
        return [(received - sent) / 1e6 for sent, received in self.stamps]

    @property
    def first_content_ms(self) -> float:
        assert self.first_content_ns is not None, "no content arrived"
        return (self.first_content_ns - self.sent_ns) / 1e6

    @property
    def total_s(self) -> float:
        return (self.end_ns - self.sent_ns) / 1e9


def _query(question: str, token: str | None) -> str:
    query = f"q={quote(question)}"
    return query + (f"&access_token={quote(token)}" if token else "")


def relay_request(host: str, port: int, question: str, token: str | None = None) -> bytes:
    """``GET /chat?q=...`` as a browser's EventSource sends it (with the page's access token)."""
    return (
        f"GET /chat?{_query(question, token)} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Accept: text/event-stream\r\nConnection: close\r\n\r\n"
    ).encode()


def upstream_request(host: str, port: int, base_path: str, question: str) -> bytes:
    """The fake Zhipu's ``chat/completions`` POST, as the relay sends it."""
    body = json.dumps(
        {
            "model": BENCH_MODEL,
            "messages": [{"role": "user", "content": question}],
            "stream": True,
            "max_tokens": int(MAX_TOKENS_CAP),
        }
    ).encode()
    return (
        f"POST {base_path}/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def post_request(host: str, port: int, path: str, body: dict[str, Any]) -> bytes:
    """A JSON ``POST`` to the relay, as an OpenAI SDK sends it (``/v1/...``)."""
    data = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode() + data


def stream(
    address: tuple[str, int],
    request: bytes,
    *,
    end_marker: bytes,
    stamps: bool = False,
    timeout: float = 30.0,
    tls: ssl.SSLContext | None = None,
    accept_wait_s: float = 0.0,
    content_marker: bytes = b'"content":"',
    stamp_pattern: re.Pattern[bytes] = STAMP,
) -> Timing:
    """Send ``request`` on a new connection and time the answer until ``end_marker``.

    With ``stamps``, each ``#stamp`` content (the upstream's send time in epoch ns) is paired
    with the time the ``recv`` that completed it returned. With ``tls``, the connection is
    HTTPS; its handshake is done before the clock starts. ``accept_wait_s`` waits that long
    after connecting before the clock starts, so that the server has accepted the connection:
    a TLS handshake makes sure of that, a plain TCP connect does not (the kernel completes it
    before the server process has run). ``content_marker`` is what the first content of the
    answer's wire format starts with, ``stamp_pattern`` what finds a stamp in it.
    """
    timing = Timing()
    buffer = bytearray()
    scanned = 0
    raw = socket.create_connection(address, timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = tls.wrap_socket(raw, server_hostname=address[0]) if tls is not None else raw
    with sock:
        if accept_wait_s:
            time.sleep(accept_wait_s)
        timing.sent_ns = time.time_ns()
        sock.sendall(request)
        while True:
            data = sock.recv(262144)
            now = time.time_ns()
            if not data:
                raise RuntimeError(
                    f"connection closed before {end_marker!r}: {bytes(buffer[-300:])!r}"
                )
            buffer += data
            if timing.first_content_ns is None and content_marker in buffer:
                timing.first_content_ns = now
            if stamps:
                # Only whole stamps: a match must end with the closing quote, and a stamp split
                # across two recvs is matched once the second arrives.
                for match in stamp_pattern.finditer(buffer, scanned):
                    timing.stamps.append((int(match.group(1)), now))
                    scanned = match.end()
            start = max(0, len(buffer) - len(data) - len(end_marker))
            if buffer.find(end_marker, start) != -1:
                timing.end_ns = now
                break
    timing.raw_bytes = len(buffer)
    timing.contents = buffer.count(content_marker) if not stamps else len(timing.stamps)
    return timing


def rotated(names: list[str], round_index: int) -> list[str]:
    """The order of one round: rotated, so no way always goes first."""
    shift = round_index % len(names)
    return names[shift:] + names[:shift]


def interleaved(
    ways: Mapping[str, Callable[[], float]], rounds: int, *, warm_up: int = 3, pause: float = 0.0
) -> dict[str, list[float]]:
    """Each way's measurements over ``rounds`` rotated rounds, after ``warm_up`` untimed ones
    (secrets, tokens, pooled connections, first-use imports), ``pause`` seconds after each."""
    for _ in range(warm_up):
        for way in ways.values():
            way()
    seen: dict[str, list[float]] = {name: [] for name in ways}
    for index in range(rounds):
        for name in rotated(list(ways), index):
            seen[name].append(ways[name]())
            time.sleep(pause)
    return seen


def wait_for_port(address: tuple[str, int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(address, timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def chat_event(question: str, token: str | None = None) -> dict[str, Any]:
    """The payload-2.0 event a function URL sends for ``GET /chat?q=...`` from a browser."""
    query = _query(question, token)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/chat",
        "rawQueryString": query,
        "headers": {"accept": "text/event-stream", "host": "bench.lambda-url.local"},
        "requestContext": {
            "http": {"method": "GET", "path": "/chat", "sourceIp": "127.0.0.1"},
            "requestId": str(uuid.uuid4()),
        },
        "isBase64Encoded": False,
    }
