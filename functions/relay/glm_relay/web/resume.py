"""Resumable streams: record each relayed answer, and serve its rest to a caller who reconnects.

The invocation that serves an answer gives every frame but keepalives to a ``JournalWriter``
(``state/journal_writer.py``). A request that carries ``Last-Event-ID: <request-id>:<n>`` on a route
that relays answers is answered from that record instead: the events after the first ``n``, then
the stream as it is being recorded (consistent reads every ``TAIL_INTERVAL`` seconds) up to its
terminal event. It never reaches the upstream and costs no quota. Only the caller who started the
stream (same access-token ``sub``; ``anonymous`` without tokens) may resume it; anyone else, an
unknown or expired id, and a finished stream whose events were all seen get 204, so a browser's
``EventSource`` stops trying. Someone else's stream is looked for exactly as an unknown id is
(the same reads, the same waits), so neither the answer nor its timing tells that it exists.

When the resumed stream ends for a reason of the resumer's own (the record stopped growing, was
given up, or this invocation's time ran out), its error event's id is ``<request-id>:<n>.1``,
``n`` the last real event the caller has: it names no event of the stream, and a reconnect that
sends it resumes after event ``n``.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from glm_relay.chat.clock import LOOP_CLOCK, Clock, sleep
from glm_relay.chat.relay import RelayBody
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.runtime import StreamingResponse, fixed_response
from glm_relay.sse import KEEPALIVE_FRAME, dumps_data, encode_event
from glm_relay.web.anthropic.errors import error_event as anthropic_error_event
from glm_relay.web.headers import NO_STORE_HEADERS, SSE_HEADERS
from glm_relay.web.openai_errors import error_object

if TYPE_CHECKING:
    from glm_relay.config import Settings
    from glm_relay.state.journal import Batch, StreamJournal
    from glm_relay.web.routing import Exchange

TAIL_INTERVAL = 0.25
"""Seconds between consistent reads while following a stream (the writer's batch interval: a
shorter one reads nothing new more often; see the README's measured figures)."""
STALE_MARGIN = 5.0
"""Seconds past the upstream idle timeout after which a record that stopped growing without a
terminal event is given up (its invocation died)."""

# A stream's first frame is written at once, but a client can reconnect before that write has
# landed (a busy table can take a second or more): an id is called unknown only after this many
# more reads, TAIL_INTERVAL apart.
_FIRST_READ_RETRIES = 8
OWN_EVENT_SUFFIX = ".1"
"""Ends the id of an event of the resumer's own: ``<request-id>:<n>.1`` comes after event ``n``
and is none of the stream's (their ids are whole numbers)."""
_ID = re.compile(rf"([A-Za-z0-9-]{{1,64}}):(\d{{1,9}})(?:{re.escape(OWN_EVENT_SUFFIX)})?")


def _chat_error(request_id: str, after: int, error: RelayError) -> bytes:
    event_id = f"{request_id}:{after}{OWN_EVENT_SUFFIX}"
    return encode_event("error", dumps_data(error.event_data()), event_id)


def _openai_error(request_id: str, after: int, error: RelayError) -> bytes:
    return f"data: {dumps_data({'error': error_object(error)})}\n\n".encode()


def _responses_error(request_id: str, after: int, error: RelayError) -> bytes:
    """``response.failed`` as ``web/responses/events.py`` writes it (sequence numbers from 0, so
    the one after event ``after`` is ``after``); its error carries ``last_event_id``."""
    failure = {"code": error.code.value, "message": error.message, **error.extra}
    response = {"id": f"resp_{request_id}", "object": "response", "status": "failed"}
    data = {
        "type": "response.failed",
        "response": {**response, "error": failure, "output": []},
        "sequence_number": after,
    }
    return f"event: response.failed\ndata: {dumps_data(data)}\n\n".encode()


ErrorFrame = Callable[[str, int, RelayError], bytes]


def _anthropic_error(request_id: str, after: int, error: RelayError) -> bytes:
    """An ``error`` event as ``web/anthropic/events.py`` writes it; it carries
    ``last_event_id``."""
    return anthropic_error_event(error)


RESUMABLE_ROUTES: dict[str, ErrorFrame] = {
    "/chat": _chat_error,
    "/v1/chat/completions": _openai_error,
    "/v1/responses": _responses_error,
    "/v1/messages": _anthropic_error,
}
"""The routes whose answers are recorded, and how each writes a terminal error of its own."""


def parse_last_event_id(value: str) -> tuple[str, int] | None:
    """``(request_id, n)`` from ``<request-id>:<n>`` (or an own event's ``<request-id>:<n>.1``),
    or ``None`` when it is not one of ours."""
    match = _ID.fullmatch(value.strip())
    return (match[1], int(match[2])) if match else None


def events(frame: str) -> list[str]:
    """The events of a recorded frame (a ``/v1`` terminal frame holds up to three)."""
    return [part + "\n\n" for part in frame.split("\n\n") if part]


def events_recorded(batches: list[Batch]) -> int:
    """How many events the batches hold (batches may overlap: a frame counts once)."""
    count, next_frame = 0, 1
    for batch in batches:
        for frame in batch.frames[max(0, next_frame - batch.first) :]:
            count += len(events(frame))
        next_frame = max(next_frame, batch.next)
    return count


class ResumableStreams:
    """Records answers and resumes them; ``journal`` is ``None`` when streams are not resumable."""

    def __init__(
        self, settings: Settings, journal: StreamJournal | None, *, clock: Clock = LOOP_CLOCK
    ) -> None:
        self._settings = settings
        self.journal = journal
        self._clock = clock

    def record(self, exchange: Exchange, response: StreamingResponse) -> None:
        """Have a relayed answer's body record its frames (before its first frame is read)."""
        request = exchange.request
        body = response.body
        if self.journal is None or response.status_code != 200:
            return
        if not isinstance(body, RelayBody) or request.path not in RESUMABLE_ROUTES:
            return
        remaining = exchange.context.get_remaining_time_in_millis() / 1000
        writer = self.journal.writer(
            request.request_id,
            owner=exchange.owner,
            route=request.path,
            expires_at=int(time.time() + remaining + self._settings.resumable_ttl_seconds),
        )
        body.record(writer)

    async def resume(self, exchange: Exchange) -> StreamingResponse:
        """The rest of the stream ``Last-Event-ID`` names, or 204 (claims are checked already)."""
        request, journal = exchange.request, self.journal
        error_frame = RESUMABLE_ROUTES.get(request.path)
        position = parse_last_event_id(request.headers.get("last-event-id", ""))
        if journal is None or error_frame is None or position is None:
            return _no_content()
        request_id, seen = position
        try:
            found = await self._find(journal, request_id, exchange.owner, request.path)
            batches = await journal.read(request_id) if found else []
        except Exception:
            raise RelayError(
                ErrorCode.STATE_UNAVAILABLE, "the state store is unavailable"
            ) from None
        if not batches:
            return _no_content()
        last = batches[-1]
        if last.end and not last.lost and events_recorded(batches) <= seen:
            return _no_content()
        settings, clock = self._settings, self._clock
        remaining_ms = exchange.context.get_remaining_time_in_millis()
        tail = Tail(
            journal,
            request_id,
            error_frame,
            keepalive=settings.keepalive_seconds,
            stale_after=settings.idle_timeout_seconds + STALE_MARGIN,
            deadline=clock.now() + max(0, remaining_ms - settings.deadline_margin_ms) / 1000,
            clock=clock,
        )
        return StreamingResponse(200, dict(SSE_HEADERS), tail.frames(batches, seen))

    async def _find(self, journal: StreamJournal, request_id: str, owner: str, route: str) -> bool:
        """Whether the caller's stream ``request_id`` is recorded on ``route``. The first item is
        read, then again ``TAIL_INTERVAL`` apart (a reconnect can come before the first write has
        landed): someone else's stream is read exactly as often as an unknown id, so the time
        this takes tells nothing about it."""
        for attempt in range(_FIRST_READ_RETRIES + 1):
            if attempt:
                await sleep(self._clock, TAIL_INTERVAL)
            head = await journal.head(request_id)
            if head is not None and head.owner == owner and head.route == route:
                return True
        return False


def _no_content() -> StreamingResponse:
    return fixed_response(204, dict(NO_STORE_HEADERS))


class Tail:
    """Follows one recorded stream from a position to its terminal event."""

    def __init__(
        self,
        journal: StreamJournal,
        request_id: str,
        error_frame: ErrorFrame,
        *,
        keepalive: float,
        stale_after: float,
        deadline: float,
        interval: float = TAIL_INTERVAL,
        clock: Clock = LOOP_CLOCK,
    ) -> None:
        self._journal = journal
        self._request_id = request_id
        self._error_frame = error_frame
        self._keepalive = keepalive
        self._stale_after = stale_after
        self._deadline = deadline
        self._interval = interval
        self._clock = clock
        self.reads = 0

    async def frames(self, batches: list[Batch], seen: int) -> AsyncIterator[bytes]:
        """The events after the first ``seen``, one chunk per batch, then exactly one terminal
        event: the stream's own, or an error of ours when the record stops, was given up, or
        time runs out (``answer_stopped``: a retry cannot help; ``deadline_exceeded``: it may)."""
        clock = self._clock
        counted = 0  # events of the stream passed so far, sent or skipped
        next_frame = 1
        last_sent = last_growth = clock.now()
        while True:
            out: list[str] = []
            for batch in batches:
                for frame in batch.frames[max(0, next_frame - batch.first) :]:
                    for event in events(frame):
                        counted += 1
                        if counted > seen:
                            out.append(event)
                next_frame = max(next_frame, batch.next)
                if batch.lost:
                    lost = RelayError(
                        ErrorCode.ANSWER_STOPPED, "the answer could not be recorded to its end"
                    )
                    out.append(self._error(max(counted, seen), lost).decode())
                if batch.end:
                    if out:
                        yield "".join(out).encode()
                    return
            now = clock.now()
            if batches:
                last_growth = now
            if out:
                last_sent = now
                yield "".join(out).encode()
            failure = None
            if now >= self._deadline:
                failure = RelayError(
                    ErrorCode.DEADLINE_EXCEEDED, "the answer did not finish in time"
                )
            elif now - last_growth >= self._stale_after:
                failure = RelayError(ErrorCode.ANSWER_STOPPED, "the answer stopped arriving")
            if failure is not None:
                yield self._error(max(counted, seen), failure)
                return
            if now - last_sent >= self._keepalive:
                last_sent = now
                yield KEEPALIVE_FRAME
            await sleep(clock, min(self._interval, max(self._deadline - now, 0.0)))
            self.reads += 1
            try:
                batches = await self._journal.read(self._request_id, after=next_frame - 1)
            except Exception:
                batches = []  # a failed read is tried again; a lasting outage ends as stale

    def _error(self, after: int, error: RelayError) -> bytes:
        """Our own terminal event, after the caller's last real event ``after``; it carries the
        ``Last-Event-ID`` that resumes from there (a ``/v1`` client counts no id)."""
        resume_from = f"{self._request_id}:{after}"
        error = RelayError(error.code, error.message, extra={"last_event_id": resume_from})
        return self._error_frame(self._request_id, after, error)
