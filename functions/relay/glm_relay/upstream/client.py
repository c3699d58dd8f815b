"""The Zhipu client: one pooled httpx connection, a streaming request, typed pieces back.

Opening a stream resolves everything that can still change the HTTP status the caller gets:
credentials (re-read once after a 401, in case the key was rotated), the choice of a key from the
pool (``upstream/health.py``), retries of connect errors, 429s and 5xx with capped, jittered
backoff inside the deadline, and the mapping of Zhipu's error codes onto ours. A key Zhipu
refuses for good (invalid, out of balance) is sidelined and the request moves to another key at
once; those moves are bounded by the pool's size and use no retry. Once a stream is open, nothing
is retried: the caller may already hold content.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from glm_relay.errors import ErrorCode, RelayError
from glm_relay.upstream.errors import error_from_body, retry_after_seconds, transport_error
from glm_relay.upstream.health import KeyHealth
from glm_relay.upstream.stream import UpstreamStream
from glm_relay.upstream.translate import zhipu_body

if TYPE_CHECKING:
    import ssl

    import httpx

    from glm_relay.chat.request import ChatRequest
    from glm_relay.config import Settings
    from glm_relay.http_pool import AsyncioBackend
    from glm_relay.upstream.credentials import CredentialStore
    from glm_relay.upstream.keys import PoolKey

_CHAT_PATH = "/chat/completions"
# A non-200 body is read this far at most: enough for any error object Zhipu sends.
_ERROR_BODY_LIMIT = 64 * 1024
# With every key sidelined, the secret is read again at most this often (it may hold new keys).
_SIDELINED_REREAD_SECONDS = 10.0
# Refusals that are the key's, not the request's: the key is sidelined (reason for the log).
_KEY_REFUSALS = {
    ErrorCode.UPSTREAM_AUTH_FAILED: "invalid",
    ErrorCode.INSUFFICIENT_BALANCE: "out_of_balance",
}


# Idle connections to Zhipu are kept longer than the pool's default: a new one costs a TLS
# handshake across regions, and a user's next message often comes 30 s or more after the last
# answer. A connection Zhipu closed at that very moment fails before any byte of an answer and
# is replaced at once by the pool (``http_pool.transport``), so the race costs no error.
ZHIPU_IDLE_CONNECTION_SECONDS = 60.0


class ZhipuClient:
    """Streams chat completions from Zhipu, with one connection pool per container.

    ``transport`` replaces the pooled httpx transport (tests pass ``httpx.MockTransport``);
    ``sleep`` and ``clock`` replace the backoff's waiting and the deadline's clock; ``health``
    the keys' health (its own clock and random source).

    Example:
        client = ZhipuClient(settings, credentials)
        stream = await client.open_stream(chat, request_id="r-1", deadline=time.monotonic() + 30)
    """

    def __init__(
        self,
        settings: Settings,
        credentials: CredentialStore,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        health: KeyHealth | None = None,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self.health = health or KeyHealth(cooloff_seconds=settings.key_cooloff_seconds)
        self._url_text = settings.zhipu_base_url.rstrip("/") + _CHAT_PATH
        self._urls: dict[str, httpx.URL] = {}  # parsed once (httpx would on every request)
        self._transport = transport
        self._backend: AsyncioBackend | None = None  # the pool's, when this client builds it
        # The per-request timeouts an httpx transport reads (``httpx.Timeout(...).as_dict()``).
        self._timeout: dict[str, float | None] = {
            "connect": settings.connect_timeout_seconds,
            "read": settings.idle_timeout_seconds,
            "write": settings.connect_timeout_seconds,
            "pool": settings.connect_timeout_seconds,
        }
        self._sleep = sleep
        self._clock = clock

    @property
    def http(self) -> httpx.AsyncBaseTransport:
        """The shared connection pool, created on first use (keep-alive spares a TLS handshake
        per call), verifying with the container's SSL context (``glm_relay.tls``), over
        ``glm_relay.http_pool`` (a request leaves in one write).

        Requests go to httpx's transport directly: the client layer above it (cookies, auth
        flows, redirects, event hooks) does nothing for one fixed POST and costs a few hundred
        microseconds on every request's path to the first token.
        """
        if self._transport is None:
            from glm_relay.http_pool import PooledTransport

            self._transport = PooledTransport(
                self._tls_context(),
                max_keepalive=20,
                keepalive_expiry=ZHIPU_IDLE_CONNECTION_SECONDS,
                backend=self._network(),
            )
        return self._transport

    def _parsed_url(self, key: PoolKey | None = None) -> httpx.URL:
        """The chat URL of ``key`` (default: ``ZHIPU_BASE_URL``), parsed on first use (httpx is
        imported lazily)."""
        text = key.base_url + _CHAT_PATH if key is not None and key.base_url else self._url_text
        url = self._urls.get(text)
        if url is None:
            import httpx

            url = self._urls[text] = httpx.URL(text)
        return url

    def _tls_context(self) -> ssl.SSLContext:
        from glm_relay.tls import client_context

        return client_context(self._settings.tls_ca_bundle)

    def _network(self) -> AsyncioBackend:
        if self._backend is None:
            from glm_relay.http_pool import AsyncioBackend

            self._backend = AsyncioBackend()
        return self._backend

    def start_preparing(self) -> asyncio.Task[None] | None:
        """Start :meth:`prepare` in the background when an event loop runs (a container is built
        inside its first request), so that it overlaps the access-token key read; its errors are
        dropped, since the request that needs the result meets them itself."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        return loop.create_task(self._prepare_quietly())

    async def prepare(self) -> None:
        """Do ahead what a first request needs before it can send: a connection to Zhipu (TCP
        and TLS, two round trips, started first), the signed token (the secret read) and the
        pool (its SSL context)."""
        if self._transport is None:  # a pool this client builds, not one it was given
            url = self._parsed_url()
            timeout = self._settings.connect_timeout_seconds
            self._network().open_ahead(url, self._tls_context, timeout=timeout)
        await self._credentials.authorization()
        _ = self.http  # builds the pool and its SSL context

    async def _prepare_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await self.prepare()

    async def aclose(self) -> None:
        """Close the pooled connections (and one opened ahead and never used)."""
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None
        if self._backend is not None:
            await self._backend.close_ahead()

    async def open_stream(
        self,
        chat: ChatRequest,
        *,
        request_id: str,
        deadline: float,
        on_sent: Callable[[], None] | None = None,
    ) -> UpstreamStream:
        """POST ``chat`` with ``stream=true`` and return once a 200 stream has begun.

        ``deadline`` is an instant on the client's clock; retries never sleep past it.
        ``on_sent`` is called once the request is written, or waits on I/O before it can be
        (a secret read, a new connection). Raises ``RelayError`` with the mapped code when the
        upstream refuses for good.
        """
        import httpx

        from glm_relay.http_pool import when_out_of_hands

        body = {**zhipu_body(chat, request_id), "stream": True}
        payload = json.dumps(body, ensure_ascii=False).encode()
        sent = 0  # requests that reached the wire
        failures = 0  # retryable failures so far
        refresh = False
        refreshed = False
        refused: dict[str, RelayError] = {}  # keys that refused this request for good
        again: str | None = None  # the key a 401 is retried on, once the secret was re-read

        while True:
            if on_sent is not None and (refresh or not self._credentials.fresh):
                on_sent()  # a secret read comes first: I/O
            pool = await self._credentials.keys(refresh=refresh)
            refresh = False
            key = self._choose(pool, chat.model, refused, again)
            again = None
            if key is None and not refreshed and self._may_reread():
                refresh = refreshed = True  # every key is resting: the secret may hold new ones
                continue
            if key is None:
                raise self._none_left(pool, chat.model, refused)
            authorization = await self._credentials.authorization(key)
            sent += 1
            try:
                with when_out_of_hands(on_sent):
                    response = await self._send(payload, key, authorization, deadline)
            except httpx.TransportError as exc:
                error = transport_error(exc, connecting=True)
                if error.code is ErrorCode.UPSTREAM_STALLED:
                    raise error from None
            else:
                if response.status_code == 200:
                    return UpstreamStream(response, sent)
                error = await _error_of(response)
                if response.status_code == 401 and not refreshed:
                    # The key may have been rotated: read the secret again, re-sign, once, and
                    # ask with the same key (its token may have expired) if it is still there.
                    refresh = refreshed = True
                    again = key.fingerprint
                    continue
                if error.code in _KEY_REFUSALS:
                    refused[key.fingerprint] = error
                    if len(pool) > 1:  # a pool of one has nowhere else to send the load
                        self.health.sideline(key, _KEY_REFUSALS[error.code])
                    continue
            failures += 1
            if not error.retryable or failures >= self._settings.retry_attempts:
                raise error
            delay = self._backoff(failures, error.retry_after)
            if error.code is ErrorCode.RATE_LIMITED and len(pool) > 1:
                # The key rests as long as Zhipu asks (it still serves when nothing else can).
                self.health.throttle(key, delay if error.retry_after is None else error.retry_after)
                if any(
                    not self.health.is_throttled(k) for k in self._open_keys(pool, chat, refused)
                ):
                    delay = 0.0  # another key takes the retry now
            if self._clock() + delay >= deadline:
                raise error
            if delay:
                await self._sleep(delay)

    def _open_keys(
        self, pool: tuple[PoolKey, ...], chat: ChatRequest, refused: dict[str, RelayError]
    ) -> list[PoolKey]:
        return self.health.usable([k for k in pool if k.serves(chat.model)], refused)

    def _choose(
        self,
        pool: tuple[PoolKey, ...],
        model: str,
        refused: dict[str, RelayError],
        again: str | None,
    ) -> PoolKey | None:
        serving = [k for k in pool if k.serves(model)]
        if not serving:
            raise RelayError(
                ErrorCode.MODEL_NOT_ALLOWED, f"no upstream key is configured for the model {model}"
            )
        same = next((k for k in serving if k.fingerprint == again), None)
        return same or self.health.choose(serving, refused)

    def _may_reread(self) -> bool:
        return self._credentials.seconds_since_read() >= _SIDELINED_REREAD_SECONDS

    def _none_left(
        self, pool: tuple[PoolKey, ...], model: str, refused: dict[str, RelayError]
    ) -> RelayError:
        """What a request is told when no key can take it: the refusal it met itself, else
        that every key is resting, and for how long."""
        if refused:
            return list(refused.values())[-1]
        wait = self.health.retry_after([k for k in pool if k.serves(model)])
        return RelayError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            "every upstream key is resting after the upstream refused it",
            retry_after=max(1.0, wait),
        )

    async def _send(
        self, payload: bytes, key: PoolKey, authorization: str, deadline: float
    ) -> httpx.Response:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise RelayError(ErrorCode.DEADLINE_EXCEEDED, "the request ran out of time")
        import httpx

        transport = self.http
        request = httpx.Request(
            "POST",
            self._parsed_url(key),
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
            raise RelayError(
                ErrorCode.DEADLINE_EXCEEDED, "the upstream did not answer before the deadline"
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
            if len(raw) > _ERROR_BODY_LIMIT:
                break
    except httpx.HTTPError:
        pass  # the status alone still says what happened
    finally:
        await response.aclose()
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    return error_from_body(
        body if isinstance(body, dict) else {},
        status=response.status_code,
        retry_after=retry_after_seconds(response.headers.get("retry-after")),
    )
