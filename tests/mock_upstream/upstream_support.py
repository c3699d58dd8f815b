"""Helpers for the fake upstream's tests: sign tokens, post requests, cut raw SSE into frames.

The frame splitter is deliberately naive and strict: it only accepts what Zhipu sends (`data:`
lines, each followed by a blank line), so any extra line type or framing change fails a test.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import jwt

# httpx writes a POST's headers and body separately; without TCP_NODELAY, Nagle's algorithm holds
# the body until the server's delayed ACK (40 ms on Linux loopback) for every request.
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def client(**kwargs: Any) -> httpx.Client:
    transport = httpx.HTTPTransport(socket_options=NODELAY)
    return httpx.Client(transport=transport, trust_env=False, **kwargs)


# One client for all tests: creating one per request costs more than the request.
HTTP = client(timeout=10.0)

# Long enough for PyJWT not to warn about a short HMAC key.
KEY_ID = "testkey"
KEY_SECRET = "0123456789abcdef0123456789abcdef"
API_KEY = f"{KEY_ID}.{KEY_SECRET}"


def sign(
    key_id: str = KEY_ID,
    secret: str = KEY_SECRET,
    *,
    ttl_ms: int = 210_000,
    now_ms: int | None = None,
    headers: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
) -> str:
    """A Zhipu JWT the way the official SDK signs it (milliseconds, `sign_type: SIGN`)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    payload = {"api_key": key_id, "exp": now + ttl_ms, "timestamp": now, **(claims or {})}
    return jwt.encode(
        payload, secret, algorithm="HS256", headers=headers or {"alg": "HS256", "sign_type": "SIGN"}
    )


def body(text: str = "hello", *, stream: bool = True, **fields: Any) -> dict[str, Any]:
    return {
        "model": "glm-4-flash",
        "messages": [{"role": "user", "content": text}],
        "stream": stream,
        **fields,
    }


def post(
    base_url: str,
    payload: Any,
    *,
    token: str | None = API_KEY,
    timeout: float = 10.0,
    raw: bytes | None = None,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    url = base_url + "/chat/completions"
    if raw is not None:
        headers["Content-Type"] = "application/json"
        return HTTP.post(url, content=raw, headers=headers, timeout=timeout)
    return HTTP.post(url, json=payload, headers=headers, timeout=timeout)


def frames(raw: bytes, end: bytes = b"\n\n") -> list[str]:
    """The `data:` payloads of a complete stream, in order."""
    assert raw.endswith(end), raw[-40:]
    out = []
    for frame in raw[: -len(end)].split(end):
        assert frame.startswith(b"data: "), frame[:40]
        payload = frame[len(b"data: ") :]
        assert b"\n" not in payload and b"\r" not in payload, "one line per frame"
        out.append(payload.decode("utf-8"))
    return out


def chunks(raw: bytes, end: bytes = b"\n\n") -> list[dict[str, Any]]:
    """The JSON chunks of a complete stream, checking that it ends with `[DONE]`."""
    payloads = frames(raw, end)
    assert payloads[-1] == "[DONE]"
    return [json.loads(p) for p in payloads[:-1]]


def content_of(parsed: list[dict[str, Any]], field: str = "content") -> list[str]:
    return [
        c["choices"][0]["delta"][field]
        for c in parsed
        if "finish_reason" not in c["choices"][0] and field in c["choices"][0]["delta"]
    ]


def error_json(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")).encode()
