"""The Zhipu client: one pooled httpx connection, a streaming request, decoded and typed chunks.

Opening a stream resolves everything that can still change the HTTP status the caller gets:
credentials (re-read once after a 401, in case the key was rotated), retries of connect errors,
429s and 5xx with capped, jittered backoff inside the deadline, and the mapping of Zhipu's error
codes onto ours. Once a stream is open, nothing is retried: the caller may already hold content.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from glm_relay.errors import RelayError
from glm_relay.sse import SSEDecoder

if TYPE_CHECKING:
    import httpx

    from glm_relay.config import Settings
    from glm_relay.credentials import CredentialStore

_DONE = "[DONE]"
_PLAIN_MARK = '"choices":[{"index":0,"delta":{"role":"assistant","content":"'
_PLAIN_END = '"}}]}'
_CHAT_PATH = "/chat/completions"
# Finish reasons that mean the answer was cut short by the upstream: reported as errors.
FAILED_FINISH_REASONS = {
    "sensitive": ("content_filtered", "the answer was stopped by the upstream content filter"),
    "network_error": ("upstream_network_error", "the upstream failed while generating"),
}


@dataclass(slots=True)
class Finish:
    """The last chunk of an answer: why it ended and what it cost."""

    finish_reason: str
    usage: dict[str, Any] | None
    model: str | None
    upstream_id: str | None


@dataclass(slots=True)
class Piece:
    """One decoded unit of an answer: ``kind`` is content, reasoning, tool_call or finish.

    ``literal`` is the content exactly as the upstream's JSON spelled it (quotes included), when
    the chunk had the plain shape, so a wire format can pass it on without re-encoding.
    """

    kind: str
    value: Any
    literal: str | None = None


class UpstreamStream:
    """An open ``chat/completions`` stream; ``read`` gives raw bytes, ``parse`` gives pieces."""

    def __init__(self, response: httpx.Response, attempts: int) -> None:
        self.response = response
        self.attempts = attempts
        self._raw = response.aiter_raw()
        self._decoder = SSEDecoder()

    async def read(self) -> bytes:
        """The next bytes off the wire, ``b""`` at the end of the body; a broken or silent
        connection is a ``RelayError``."""
        import httpx

        try:
            return await anext(self._raw)
        except StopAsyncIteration:
            return b""
        except httpx.ReadTimeout:
            raise RelayError.of("upstream_stalled", "the upstream stopped sending") from None
        except httpx.TransportError:
            raise RelayError.of(
                "upstream_disconnected", "the upstream connection broke mid-answer"
            ) from None

    def parse(self, data: bytes) -> list[Piece]:
        """Decode ``data`` into pieces; raises ``RelayError`` for error frames and garbage."""
        pieces: list[Piece] = []
        for event in self._decoder.feed(data):
            if event.data == _DONE:
                continue
            plain = _plain_content(event.data)
            if plain is not None:
                if plain.value:
                    pieces.append(plain)
                continue
            try:
                chunk = json.loads(event.data)
            except ValueError:
                raise RelayError.of(
                    "upstream_protocol_error", "the upstream sent a frame that is not JSON"
                ) from None
            if not isinstance(chunk, dict):
                raise RelayError.of("upstream_protocol_error", "the upstream sent an odd frame")
            if "error" in chunk:
                raise error_from_body(chunk, status=0)
            _pieces_of(chunk, pieces)
        return pieces

    async def aclose(self) -> None:
        """Release the connection (closing it if the body was not read to the end)."""
        await self.response.aclose()


def _plain_content(data: str) -> Piece | None:
    """The content of a chunk shaped ``{…,"choices":[{"index":0,"delta":{"role":"assistant",
    "content":"…"}}]}`` (nearly every chunk), read without parsing the whole JSON.

    ``scanstring`` (the json module's C string scanner) finds where the content string ends and
    decodes it; anything else about the chunk (a finish reason, reasoning, tool calls, another
    key order) sends it down the general path.
    """
    if not data.endswith(_PLAIN_END):
        return None
    mark = data.find(_PLAIN_MARK)
    if mark < 0 or data.find('"finish_reason"', 0, mark) >= 0:
        return None
    start = mark + len(_PLAIN_MARK)
    try:
        content, end = scanstring(data, start)
    except ValueError:
        return None
    if end != len(data) - len(_PLAIN_END) + 1:
        return None
    return Piece("content", content, data[start - 1 : end])


def _pieces_of(chunk: dict[str, Any], out: list[Piece]) -> None:
    choices = chunk.get("choices") or []
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    delta = choice.get("delta") or {}
    reasoning = delta.get("reasoning_content")
    if reasoning:
        out.append(Piece("reasoning", reasoning))
    content = delta.get("content")
    if content:
        out.append(Piece("content", content))
    for call in delta.get("tool_calls") or ():
        out.append(Piece("tool_call", call))
    finish_reason = choice.get("finish_reason")
    if finish_reason:
        out.append(
            Piece(
                "finish",
                Finish(finish_reason, chunk.get("usage"), chunk.get("model"), chunk.get("id")),
            )
        )


class ZhipuClient:
    """Streams chat completions from Zhipu, with one connection pool per container.

    Example:
        client = ZhipuClient(settings, credentials)
        stream = await client.open_stream({"model": "glm-4-flash", "messages": [...]}, deadline)
    """

    def __init__(
        self,
        settings: Settings,
        credentials: CredentialStore,
        *,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._url = settings.zhipu_base_url.rstrip("/") + _CHAT_PATH
        self._transport: httpx.AsyncHTTPTransport | None = None
        self._timeout: dict[str, float | None] = {}
        self._sleep = sleep

    @property
    def http(self) -> httpx.AsyncHTTPTransport:
        """The shared connection pool, created on first use (keep-alive spares a TLS handshake
        per call).

        Requests go to httpx's transport directly: the client layer above it (cookies, auth
        flows, redirects, event hooks) does nothing for one fixed POST and costs a few hundred
        microseconds on every request's path to the first token.
        """
        if self._transport is None:
            import httpx

            s = self._settings
            self._timeout = httpx.Timeout(
                connect=s.connect_timeout_seconds,
                read=s.idle_timeout_seconds,
                write=s.connect_timeout_seconds,
                pool=s.connect_timeout_seconds,
            ).as_dict()
            self._transport = httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_keepalive_connections=20, keepalive_expiry=60),
                retries=0,
            )
        return self._transport

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None

    async def open_stream(self, body: dict[str, Any], deadline: float) -> UpstreamStream:
        """POST ``body`` with ``stream=true`` and return once a 200 stream has begun.

        ``deadline`` is a ``time.monotonic()`` instant; retries never sleep past it.
        Raises ``RelayError`` with the mapped code when the upstream refuses for good.
        """
        import httpx

        payload = json.dumps({**body, "stream": True}, ensure_ascii=False).encode()
        sent = 0  # requests that reached the wire
        failures = 0  # retryable failures so far
        refresh = False
        refreshed = False
        while True:
            authorization = await self._credentials.authorization(refresh=refresh)
            refresh = False
            sent += 1
            try:
                response = await self._send(payload, authorization, deadline)
            except httpx.ConnectError:
                error = RelayError.of("upstream_unavailable", "cannot connect to the upstream")
            except httpx.ConnectTimeout:
                error = RelayError.of(
                    "upstream_unavailable", "connecting to the upstream timed out"
                )
            except httpx.PoolTimeout:
                error = RelayError.of("upstream_unavailable", "no upstream connection was free")
            except (httpx.ReadTimeout, httpx.WriteTimeout):
                raise RelayError.of(
                    "upstream_stalled", "the upstream did not answer in time"
                ) from None
            except httpx.TransportError:
                error = RelayError.of("upstream_disconnected", "the upstream closed the connection")
            else:
                if response.status_code == 200:
                    return UpstreamStream(response, sent)
                error = await _error_of(response)
                if response.status_code == 401 and not refreshed:
                    # The key may have been rotated: read the secret again, re-sign, once.
                    refresh = refreshed = True
                    continue
            failures += 1
            if not error.retryable or failures >= self._settings.retry_attempts:
                raise error
            delay = self._backoff(failures, error.retry_after)
            if time.monotonic() + delay >= deadline:
                raise error
            await self._sleep(delay)

    async def _send(self, payload: bytes, authorization: str, deadline: float) -> httpx.Response:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RelayError.of("deadline_exceeded", "the request ran out of time")
        import httpx

        transport = self.http
        request = httpx.Request(
            "POST",
            self._url,
            content=payload,
            headers={
                "Authorization": authorization,
                "Content-Type": "application/json",
                "Accept": "text/event-stream",
            },
            extensions={"timeout": self._timeout},
        )
        try:
            async with asyncio.timeout(remaining):
                return await transport.handle_async_request(request)
        except TimeoutError:
            raise RelayError.of(
                "deadline_exceeded", "the upstream did not answer before the deadline"
            ) from None

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        s = self._settings
        if retry_after is not None:
            return min(retry_after, s.retry_max_delay_seconds * 4)
        ceiling = min(s.retry_max_delay_seconds, s.retry_base_delay_seconds * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


async def _error_of(response: httpx.Response) -> RelayError:
    """Read a non-200 answer (bounded) and map it."""
    import httpx

    raw = b""
    try:
        async for part in response.aiter_bytes():
            raw += part
            if len(raw) > 64 * 1024:
                break
    except httpx.HTTPError:
        pass  # the status alone still says what happened
    finally:
        await response.aclose()
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    error = error_from_body(body if isinstance(body, dict) else {}, status=response.status_code)
    error.retry_after = _retry_after(response.headers.get("retry-after"))
    return error


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_from_body(body: dict[str, Any], *, status: int) -> RelayError:
    """Map Zhipu's ``{"error": {"code", "message"}}`` (and the HTTP status) onto our codes.

    Zhipu's own message is not passed on: it can quote the request, and our catalogue's
    wording is stable. Its code is, so an operator can look it up.
    """
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = str(error.get("code", "")) if error else ""
    suffix = f" (upstream code {code})" if code.isalnum() and len(code) <= 8 else ""
    if status == 401 or code in {"1000", "1001", "1002", "1003", "1004"}:
        return RelayError.of(
            "upstream_auth_failed", "the upstream rejected the relay's key" + suffix
        )
    if code == "1113":
        return RelayError.of("insufficient_balance", "the upstream account is out of balance")
    if status == 429 or code in {"1302", "1303", "1305"}:
        return RelayError.of("rate_limited", "the upstream is rate limiting requests" + suffix)
    if code == "1261":
        return RelayError.of(
            "context_length_exceeded", "the prompt is too long for the model" + suffix
        )
    if code == "1301":
        return RelayError.of("content_filtered", "the upstream content filter refused the prompt")
    if status == 503:
        return RelayError.of("upstream_unavailable", "the upstream is unavailable" + suffix)
    if 400 <= status < 500:
        return RelayError.of(
            "upstream_rejected_request", "the upstream rejected the request" + suffix
        )
    return RelayError.of("upstream_error", "the upstream failed" + suffix)
