"""Helpers for the hardening suites: raw HTTP, tokens, the fake upstream's log, extra relays.

Everything here talks to real servers on loopback; nothing replaces a part of the function.
"""

from __future__ import annotations

import contextlib
import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from devtools.local_url import FunctionUrlConfig, running_local_url
from devtools.stack import DEV_ACCESS_TOKEN_SECRET, DevStack, MockUpstreamProcess, zhipu_secret
from glm_relay.access import TokenLimits, mint_access_token
from glm_relay.web.app import WebApp
from tests.support.sse_client import StreamResult

# Large enough that no hardening run ever meets a quota: quotas are not what these tests prove.
UNLIMITED = TokenLimits(requests_per_day=10**9, tokens_per_day=10**12)
TERMINAL_EVENTS = ("done", "error")


def mint(sub: str, *, ttl: int = 3600, secret: str = DEV_ACCESS_TOKEN_SECRET) -> str:
    """A valid access token for ``sub`` with no practical quota."""
    return mint_access_token(sub, ttl, secret, limits=UNLIMITED)


# --- the fake upstream's request log -------------------------------------------------------


def upstream_records(stack: DevStack, client: httpx.Client) -> list[dict[str, Any]]:
    assert stack.upstream is not None
    response = client.get(f"{stack.upstream.origin}/_mock/requests")
    response.raise_for_status()
    return list(response.json()["requests"])


def clear_upstream(stack: DevStack, client: httpx.Client) -> None:
    assert stack.upstream is not None
    client.delete(f"{stack.upstream.origin}/_mock/requests").raise_for_status()


def chat_records(stack: DevStack, client: httpx.Client) -> list[dict[str, Any]]:
    """Only the chat-completion requests (what costs money), oldest first."""
    return [r for r in upstream_records(stack, client) if r["path"].endswith("/chat/completions")]


# --- raw HTTP, for what httpx would normalise away ------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    base_url: str,
    method: str,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    timeout: float = 10.0,
) -> RawResponse:
    """Send exactly ``method target`` (no path normalisation) and read the whole answer."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(head + body)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    head_bytes, _, rest = bytes(received).partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    found: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        found[key] = f"{found[key]}, {value.strip()}" if key in found else value.strip()
    if found.get("transfer-encoding", "").lower() == "chunked":
        rest = _dechunk(rest)
    return RawResponse(int(status_line.split(" ")[1]), found, rest)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


# --- stream shape ----------------------------------------------------------------------------


def frames_of(raw: bytes) -> list[bytes]:
    """The frames of an SSE body as sent (comments included), in order."""
    assert raw.endswith(b"\n\n"), f"the stream does not end on a frame boundary: {raw[-80:]!r}"
    return raw[:-2].split(b"\n\n")


def assert_single_terminal_last(result: StreamResult) -> None:
    """Exactly one ``done``/``error`` event, it is the last event, and no byte follows it."""
    terminals = [e for e in result.events if e.event in TERMINAL_EVENTS]
    assert len(terminals) == 1, f"terminal events: {[e.event for e in terminals]}"
    assert result.events[-1] is terminals[0]
    last_frame = frames_of(result.raw)[-1]
    assert f"event: {terminals[0].event}\n".encode() in last_frame, (
        f"bytes after the terminal event: {last_frame!r}"
    )


# --- more relays next to the session stack ---------------------------------------------------


@contextlib.contextmanager
def serving(app: WebApp, config: FunctionUrlConfig | None = None) -> Iterator[str]:
    """``app`` behind its own local function URL; yields the URL."""
    with running_local_url(app.handle, config or FunctionUrlConfig()) as url:
        yield url


def variant_app(stack: DevStack, **overrides: Any) -> WebApp:
    """A new container of the session stack's function with some settings changed."""
    assert stack.app is not None
    return WebApp(replace(stack.app.settings, **overrides))


@contextlib.contextmanager
def sibling_stack(
    stack: DevStack,
    *,
    api_key: str,
    settings_overrides: dict[str, Any] | None = None,
    mock_args: list[str] | None = None,
) -> Iterator[DevStack]:
    """A second stack with its own Zhipu key (several: separated by commas, stored as a key
    pool) and fake upstream, sharing the session's moto.

    A second moto server would move the process-wide AWS endpoints under the session stack's
    cached clients; its secrets and table live in the one moto instead.
    """
    assert stack.app is not None
    suffix = uuid.uuid4().hex[:8]
    names = {**stack.names, "zhipu_secret": f"glm-relay/zhipu-api-key-{suffix}"}
    arn = stack.moto.put_secret(names["zhipu_secret"], zhipu_secret(api_key))
    upstream = MockUpstreamProcess(api_key, 0, list(mock_args or []))
    upstream.start()
    try:
        settings = replace(
            stack.app.settings,
            zhipu_secret_id=arn,
            zhipu_base_url=upstream.base_url,
            **(settings_overrides or {}),
        )
        app = WebApp(settings)
        sibling = DevStack(
            api_key=api_key,
            moto=stack.moto,
            upstream=upstream,
            app=app,
            names=names,
            token=mint(f"sibling-{suffix}"),
        )
        with serving(app, FunctionUrlConfig(allowed_origins=settings.allowed_origins)) as url:
            sibling.url = url
            yield sibling
    finally:
        upstream.stop()
