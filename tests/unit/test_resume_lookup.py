"""How a reconnect finds its stream, and how a resumed stream ends on its own, driven by a fake
clock and a fake journal: no sleeping, no DynamoDB.

Someone else's stream must be looked for exactly as an unknown id is: the same reads of the
store at the same moments, and the same answer, so that neither tells it exists. A record that
was given up (the lost marker) ends the resumed stream with ``answer_stopped``, not retryable.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from devtools.events import function_url_event
from glm_relay.config import Settings
from glm_relay.runtime import InvocationContext, StreamingResponse, now_ms
from glm_relay.state.journal import Batch
from glm_relay.web.request import HttpRequest
from glm_relay.web.resume import ResumableStreams, parse_last_event_id
from glm_relay.web.routing import Exchange
from tests.support.fake_clock import FakeClock, settle

RID = "stream-1"


class FakeJournal:
    """One recorded stream (or none); every read is noted with the clock's time."""

    def __init__(self, clock: FakeClock, batches: list[Batch]) -> None:
        self.clock = clock
        self.batches = batches
        self.calls: list[tuple[str, str, float]] = []

    async def head(self, request_id: str) -> Batch | None:
        self.calls.append(("head", request_id, self.clock.now()))
        return self.batches[0] if request_id == RID and self.batches else None

    async def read(self, request_id: str, *, after: int = 0) -> list[Batch]:
        self.calls.append(("read", request_id, self.clock.now()))
        if request_id != RID:
            return []
        return [b for b in self.batches if b.lost or b.next > after + 1]


def frame(n: int, event: str = "chat") -> str:
    return f"id: {RID}:{n}\nevent: {event}\ndata: {{}}\n\n"


def batch(first: int, count: int, *, owner: str = "anonymous", end: bool = False) -> Batch:
    frames = tuple(frame(n) for n in range(first, first + count))
    return Batch(first, frames, owner, "/chat", end)


def lost(first: int, owner: str = "anonymous") -> Batch:
    return Batch(first, (), owner, "/chat", True, lost=True)


async def resume(
    clock: FakeClock, journal: FakeJournal, last_event_id: str
) -> tuple[StreamingResponse, float]:
    """Reconnect to ``/chat`` without access tokens (the caller is ``anonymous``); the answer and
    how long it took on the clock."""
    settings = Settings.from_env({}, require_access_token=False, conversations_table="t")
    streams = ResumableStreams(settings, journal, clock=clock)  # type: ignore[arg-type]
    headers = {"accept": "text/event-stream", "last-event-id": last_event_id}
    event = function_url_event("GET", "/chat?q=x", headers)
    context = InvocationContext("resume-1", now_ms() + 60_000)
    exchange = Exchange(HttpRequest.from_event(event, "resume-1"), context, {})
    started = clock.now()
    task = asyncio.ensure_future(streams.resume(exchange))
    while not task.done():
        await clock.advance(0.05)
    return task.result(), clock.now() - started


def relative(calls: list[tuple[str, str, float]]) -> list[tuple[str, float]]:
    start = calls[0][2]
    return [(name, round(at - start, 3)) for name, _, at in calls]


async def test_someone_elses_stream_is_looked_for_exactly_as_an_unknown_id() -> None:
    clock = FakeClock()
    theirs = FakeJournal(clock, [batch(1, 5, owner="someone-else", end=True)])
    nothing = FakeJournal(clock, [])

    foreign, foreign_took = await resume(clock, theirs, f"{RID}:2")
    unknown, unknown_took = await resume(clock, nothing, "no-such-stream:2")

    assert (foreign.status_code, unknown.status_code) == (204, 204)
    assert relative(theirs.calls) == relative(nothing.calls)
    assert len(nothing.calls) == 9 and abs(foreign_took - unknown_took) < 0.1
    assert [name for name, _, _ in theirs.calls] == ["head"] * 9  # nothing more is read


async def test_a_stream_on_another_route_is_looked_for_as_an_unknown_id() -> None:
    clock = FakeClock()
    other_route = Batch(1, (frame(1),), "anonymous", "/v1/chat/completions", True)
    journal, nothing = FakeJournal(clock, [other_route]), FakeJournal(clock, [])

    response, _ = await resume(clock, journal, f"{RID}:0")
    await resume(clock, nothing, "unknown:0")

    assert response.status_code == 204
    assert relative(journal.calls) == relative(nothing.calls)


async def test_the_callers_own_stream_is_found_at_once() -> None:
    clock = FakeClock()
    journal = FakeJournal(clock, [batch(1, 3, end=True)])

    response, took = await resume(clock, journal, f"{RID}:1")
    body = b"".join([chunk async for chunk in response.body])

    assert response.status_code == 200 and took < 0.1
    assert [name for name, _, _ in journal.calls] == ["head", "read"]
    assert body.decode() == frame(2) + frame(3)


async def events_of(response: StreamingResponse) -> list[dict[str, Any]]:
    out = []
    async for chunk in response.body:
        for part in chunk.decode().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in part.split("\n") if ": " in line)
            if "data" in fields:
                out.append({"id": fields.get("id"), "event": fields.get("event"), **fields})
    return out


async def test_a_record_given_up_ends_the_resumed_stream_with_answer_stopped_not_retryable() -> (
    None
):
    clock = FakeClock()
    journal = FakeJournal(clock, [batch(1, 4), lost(5)])

    response, _ = await resume(clock, journal, f"{RID}:2")
    events = await events_of(response)

    assert [e["id"] for e in events] == [f"{RID}:3", f"{RID}:4", f"{RID}:4.1"]
    data = json.loads(events[-1]["data"])
    assert events[-1]["event"] == "error"
    assert (data["code"], data["retryable"], data["last_event_id"]) == (
        "answer_stopped",
        False,
        f"{RID}:4",
    )


async def test_a_caller_who_saw_more_than_was_recorded_resumes_after_what_it_saw() -> None:
    clock = FakeClock()
    journal = FakeJournal(clock, [batch(1, 4), lost(5)])

    response, _ = await resume(clock, journal, f"{RID}:7")
    events = await events_of(response)

    assert [e["id"] for e in events] == [f"{RID}:7.1"]
    await settle()


def test_an_own_event_id_reads_back_as_the_last_real_event() -> None:
    assert parse_last_event_id(f"{RID}:4.1") == (RID, 4)
    assert parse_last_event_id(f"{RID}:4") == (RID, 4)
    assert parse_last_event_id(f"{RID}:4.2") is None
