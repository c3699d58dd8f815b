"""The journal of a resumable stream: its frames in DynamoDB, so another container can serve the
rest of an answer to a client that reconnected.

One partition per stream, written only by the invocation that serves the answer:

- ``pk=STREAM#<request-id>, sk=F#<00000001>``: ``frames`` (L of S, in order), ``first`` (the
  1-based number of its first frame), ``owner``, ``route``, ``expires_at`` (the same for every item
  of a stream), and ``end`` (BOOL) on the batch that holds the terminal frame.

Frames are batched (``Batching``): the first frame is written at once, so a stream is known as
soon as it starts; later ones every ``interval`` seconds or every ``max_frames`` frames or
``max_bytes`` bytes, whichever comes first. The writer has one ``PutItem`` in flight at a time, so
batches land in order and a reader that follows the stream never sees a later batch before an
earlier one. Writes happen in a task of their own: recording a frame never waits for DynamoDB.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from glm_relay.chat.clock import LOOP_CLOCK, Cancellable, Clock
from glm_relay.state.dynamo import FRAMES_PREFIX, STREAM_PREFIX, Item, get_n, get_s, n, s

_GIVE_UP_AFTER = 3
"""Consecutive failed writes after which a stream stops being recorded (it cannot be resumed)."""


class TableCalls(Protocol):
    """What the journal needs of ``dynamo.Table``: one operation at a time, async."""

    async def call(self, operation: str, **params: Any) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Batching:
    """When pending frames are written (see the README's cost figures for why these values)."""

    interval: float = 0.25
    max_frames: int = 64
    max_bytes: int = 32 * 1024


def stream_pk(request_id: str) -> str:
    return f"{STREAM_PREFIX}{request_id}"


def frames_sk(first: int) -> str:
    """Zero-padded so that string order on ``sk`` is frame order."""
    return f"{FRAMES_PREFIX}{first:08d}"


class JournalWriter:
    """Records one stream's frames, batched; a state machine driven by an injectable clock.

    ``frame`` queues a frame and, when a batch is due and no write is in flight, starts one;
    ``end`` records the terminal frame and returns once everything is written (or given up).
    """

    def __init__(
        self,
        table: TableCalls,
        *,
        request_id: str,
        owner: str,
        route: str,
        expires_at: int,
        batching: Batching = Batching(),
        clock: Clock = LOOP_CLOCK,
    ) -> None:
        self._table = table
        self._pk = stream_pk(request_id)
        self._head: Item = {"owner": s(owner), "route": s(route), "expires_at": n(expires_at)}
        self._batching = batching
        self._clock = clock
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._due = 0.0  # when the oldest pending frame must be written
        self._written = 0  # frames stored so far
        self._timer: Cancellable | None = None
        self._writing: asyncio.Future[None] | None = None
        self._failures = 0
        self._ending = False
        self.puts = 0
        self.broken = False

    def frame(self, frame: bytes) -> None:
        """Queue one frame (never a keepalive); a write starts when a batch is due."""
        if self._ending or self.broken:
            return
        self._queue(frame)
        self._consider()

    async def end(self, terminal: bytes) -> None:
        """Record the terminal frame and write everything still pending, the last batch marked
        ``end``. Callers bound how long this may take."""
        if self._ending or self.broken:
            return
        self._ending = True
        self._queue(terminal)
        self._cancel_timer()
        writing = self._writing
        if writing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(writing)
            self._writing = None
        while self._pending and not self.broken:
            batch = self._take()
            await self._write(batch, end=not self._pending)

    def _queue(self, frame: bytes) -> None:
        if not self._pending:
            self._due = self._clock.now() + self._batching.interval
        self._pending.append(frame.decode("utf-8"))
        self._pending_bytes += len(frame)  # characters once stored; close enough for a cap

    def _consider(self) -> None:
        """Start a write if one is due and none is in flight, else make sure a timer will."""
        if self._writing is not None or not self._pending or self._ending or self.broken:
            return
        batching, now = self._batching, self._clock.now()
        if (
            self.puts == 0
            or len(self._pending) >= batching.max_frames
            or self._pending_bytes >= batching.max_bytes
            or now >= self._due
        ):
            self._cancel_timer()
            batch = self._take()
            self._writing = asyncio.ensure_future(self._write(batch, end=False))
            self._writing.add_done_callback(self._written_one)
        elif self._timer is None:
            self._timer = self._clock.call_later(self._due - now, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._consider()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _take(self) -> list[str]:
        batch = self._pending[: self._batching.max_frames]
        del self._pending[: len(batch)]
        self._pending_bytes = sum(len(f) for f in self._pending) if self._pending else 0
        return batch

    async def _write(self, batch: list[str], *, end: bool) -> None:
        """One ``PutItem``; a failed batch goes back in front of the queue to be tried again."""
        first = self._written + 1
        item: Item = {
            "pk": s(self._pk),
            "sk": s(frames_sk(first)),
            "first": n(first),
            "frames": {"L": [s(frame) for frame in batch]},
            **self._head,
        }
        if end:
            item["end"] = {"BOOL": True}
        self.puts += 1
        try:
            await self._table.call("put_item", Item=item)
        except Exception:
            self._failures += 1
            if self._failures >= _GIVE_UP_AFTER:
                self.broken = True
                self._pending.clear()
                return
            self._pending[:0] = batch
            self._pending_bytes += sum(len(f) for f in batch)
            self._due = self._clock.now() + self._batching.interval
            return
        self._failures = 0
        self._written += len(batch)

    def _written_one(self, done: asyncio.Future[None]) -> None:
        if self._writing is done:
            self._writing = None
        self._consider()


@dataclass(frozen=True, slots=True)
class Batch:
    """One stored batch: frames ``first`` .. ``first + len(frames) - 1``."""

    first: int
    frames: tuple[str, ...]
    owner: str
    route: str
    end: bool

    @property
    def next(self) -> int:
        return self.first + len(self.frames)


class StreamJournal:
    """Where streams are recorded and read back: one table, reached on first use."""

    def __init__(self, table: TableCalls, *, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._wall = clock

    def writer(
        self, request_id: str, *, owner: str, route: str, expires_at: int, **options: Any
    ) -> JournalWriter:
        return JournalWriter(
            self._table,
            request_id=request_id,
            owner=owner,
            route=route,
            expires_at=expires_at,
            **options,
        )

    async def read(self, request_id: str, *, after: int = 0) -> list[Batch]:
        """The stored batches from frame ``after + 1`` on, in order and up to the first gap
        (a batch still being written), with consistent reads; expired ones are left out.

        ``after`` is 0 or the last frame of a batch already read (batches start right after).
        """
        params: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND sk >= :from",
            "ExpressionAttributeValues": {
                ":pk": s(stream_pk(request_id)),
                ":from": s(frames_sk(after + 1) if after else FRAMES_PREFIX),
            },
            "ConsistentRead": True,
        }
        now = int(self._wall())
        batches: list[Batch] = []
        expected = after + 1
        while True:
            page = await self._table.call("query", **params)
            for item in page.get("Items", []):
                if get_n(item, "expires_at") <= now:
                    return batches
                batch = _batch(item)
                if batch.first > expected:
                    return batches  # a gap: the missing batch is not visible yet
                if batch.next > expected:
                    batches.append(batch)
                    expected = batch.next
            start = page.get("LastEvaluatedKey")
            if not start:
                return batches
            params["ExclusiveStartKey"] = start


def _batch(item: Item) -> Batch:
    frames = tuple(str(value["S"]) for value in item.get("frames", {}).get("L", []))
    return Batch(
        first=get_n(item, "first"),
        frames=frames,
        owner=get_s(item, "owner") or "",
        route=get_s(item, "route") or "",
        end=bool(item.get("end", {}).get("BOOL")),
    )
