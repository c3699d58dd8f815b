"""The writing half of a resumable stream's journal (the layout is in ``journal.py``).

Frames are batched (``Batching``): the first frame is written at once, so a stream is known as
soon as it starts; later ones every ``interval`` seconds or every ``max_frames`` frames or
``max_bytes`` bytes, whichever comes first. The writer has one ``PutItem`` in flight at a time, so
batches land in order and a reader that follows the stream never sees a later batch before an
earlier one. Writes happen in a task of their own: recording a frame never waits for DynamoDB.

When DynamoDB does not answer, the writer keeps the frames and tries again, ``interval`` after a
failure and twice as long after each further one (up to ``max_retry_delay``), for as long as the
answer runs and then for as long as its caller waits for ``end``: a stall of any length is
recovered as soon as DynamoDB answers, and the terminal frame is always tried. The frames kept
are bounded (``max_pending_bytes``); past that they are dropped and the record ends with the lost
marker instead, so that it says it cannot be completed rather than looking unfinished. A write
that timed out may still land later, so a failed batch is tried again exactly as it was (the same
frames, the same end mark): a late write then stores what the retry stores, and an item a reader
has seen never changes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from glm_relay.chat.clock import LOOP_CLOCK, Cancellable, Clock
from glm_relay.state.dynamo import FRAMES_PREFIX, STREAM_PREFIX, DynamoError, Item, n, s

ITEM_CHARS = 256 * 1024
"""The most frame text one item takes (DynamoDB refuses items over 400 KB)."""
LOST_SK = f"{FRAMES_PREFIX}~lost"
"""The lost marker's sort key: after every frame batch (``~`` sorts after the digits)."""


class TableCalls(Protocol):
    """What the journal needs of ``dynamo.Table``: one operation at a time, async."""

    async def call(self, operation: str, **params: Any) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Batching:
    """When pending frames are written (see the README's cost figures for why these values), and
    how long the writer holds on while DynamoDB does not answer."""

    interval: float = 0.25
    max_frames: int = 64
    max_bytes: int = 32 * 1024
    max_pending_bytes: int = 1024 * 1024
    max_retry_delay: float = 2.0


def stream_pk(request_id: str) -> str:
    return f"{STREAM_PREFIX}{request_id}"


def frames_sk(first: int) -> str:
    """Zero-padded so that string order on ``sk`` is frame order."""
    return f"{FRAMES_PREFIX}{first:08d}"


class JournalWriter:
    """Records one stream's frames, batched; a state machine driven by an injectable clock.

    ``frame`` queues a frame and, when a batch is due and no write is in flight, starts one;
    ``end`` records the terminal frame and returns once the record's end is stored. Its caller
    bounds how long that may take: cancelling ``end`` stops the writer.
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
        self._retry_at = 0.0  # no write before this, after a failure
        self._written = 0  # frames stored so far
        self._failures = 0  # consecutive failed writes
        self._timer: Cancellable | None = None
        self._writing: asyncio.Future[None] | None = None
        self._ending = False  # the terminal frame is queued: no frame follows it
        self._stored_end: asyncio.Future[None] | None = None  # what ``end`` waits for
        self._unsent: tuple[list[str], bool] | None = None  # a failed batch and its end mark
        self.lost = False  # frames were dropped: the record ends with the lost marker
        self.complete = False  # the record's end is stored
        self.stopped = False  # the caller stopped waiting for ``end``: nothing more is written
        self.puts = 0

    @property
    def pending_chars(self) -> int:
        """The text of the frames held, not yet written (bounded by ``max_pending_bytes``)."""
        return self._pending_bytes

    def frame(self, frame: bytes) -> None:
        """Queue one frame (never a keepalive); a write starts when a batch is due."""
        if self._ending or self.lost:
            return
        self._queue(frame)
        self._consider()

    async def end(self, terminal: bytes) -> None:
        """Record the terminal frame and write everything still pending, the last batch marked
        ``end`` (or the lost marker); returns once that is stored."""
        if self._ending:
            return
        self._ending = True
        if not self.lost:
            self._queue(terminal)
        stored = self._stored_end = asyncio.get_running_loop().create_future()
        if self.complete:
            stored.set_result(None)
        self._consider()
        try:
            await stored
        finally:
            if not self.complete:
                self.stopped = True
                self._cancel_timer()

    def _queue(self, frame: bytes) -> None:
        if not self._pending:
            self._due = self._clock.now() + self._batching.interval
        text = frame.decode("utf-8")
        self._pending.append(text)
        self._pending_bytes += len(text)  # characters, not bytes: close enough for a cap
        if self._pending_bytes > self._batching.max_pending_bytes:
            # DynamoDB has not answered for too long: keep memory bounded, give the record up.
            self._give_up()

    def _consider(self) -> None:
        """Start a write if one is due and none is in flight, else make sure a timer will."""
        if self._writing is not None or self.complete or self.stopped:
            return
        if not self.lost and not self._pending and self._unsent is None:
            return
        batching, now = self._batching, self._clock.now()
        if now < self._retry_at:
            wake_at = self._retry_at
        elif (
            self.lost
            or self._unsent is not None
            or self._ending
            or self.puts == 0
            or len(self._pending) >= batching.max_frames
            or self._pending_bytes >= batching.max_bytes
            or now >= self._due
        ):
            self._cancel_timer()
            self._writing = asyncio.ensure_future(self._write_next())
            self._writing.add_done_callback(self._written_one)
            return
        else:
            wake_at = self._due
        if self._timer is None:
            self._timer = self._clock.call_later(wake_at - now, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._consider()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _take(self) -> list[str]:
        """The next batch: at most ``max_frames`` frames and, but for its first, ``ITEM_CHARS``
        (frames held through a stall are written in items DynamoDB takes)."""
        pending = self._pending
        size = taken = 0
        for frame in pending[: self._batching.max_frames]:
            size += len(frame)
            if taken and size > ITEM_CHARS:
                break
            taken += 1
        batch = pending[:taken]
        del pending[:taken]
        self._pending_bytes -= sum(len(frame) for frame in batch)
        return batch

    async def _write_next(self) -> None:
        """One ``PutItem``: the batch that failed, exactly as it was, else the next batch, or the
        lost marker. A failed batch is tried again after a delay that grows with each failure."""
        first = self._written + 1
        item: Item = {"pk": s(self._pk), "first": n(first), **self._head}
        if self.lost:
            batch: list[str] = []
            end = True
            item |= {"sk": s(LOST_SK), "frames": {"L": []}, "lost": {"BOOL": True}}
        else:
            if self._unsent is not None:
                batch, end = self._unsent
            else:
                batch = self._take()
                end = self._ending and not self._pending
            item |= {"sk": s(frames_sk(first)), "frames": {"L": [s(frame) for frame in batch]}}
        if end:
            item["end"] = {"BOOL": True}
        self.puts += 1
        try:
            await self._table.call("put_item", Item=item)
        except Exception as exc:
            if isinstance(exc, DynamoError) and not exc.retryable and not self.lost:
                # Refused for good (an item too large, say): this record cannot be completed.
                self._give_up()
            self._failures += 1
            delay = self._batching.interval * 2 ** (self._failures - 1)
            self._retry_at = self._clock.now() + min(delay, self._batching.max_retry_delay)
            if not self.lost:
                # The same item again, never a longer one: if this write lands late after all,
                # it writes what the retry writes, and a reader never sees the item change.
                self._unsent = (batch, end)
            return
        self._failures = 0
        self._unsent = None
        self._written += len(batch)
        if end:
            self.complete = True
            stored = self._stored_end
            if stored is not None and not stored.done():
                stored.set_result(None)

    def _give_up(self) -> None:
        """Drop every frame not written: the record ends with the lost marker."""
        self.lost = True
        self._unsent = None
        self._pending.clear()
        self._pending_bytes = 0

    def _written_one(self, done: asyncio.Future[None]) -> None:
        if self._writing is done:
            self._writing = None
        self._consider()
