"""The journal of a resumable stream: its frames in DynamoDB, so another container can serve the
rest of an answer to a client that reconnected.

One partition per stream, written only by the invocation that serves the answer:

- ``pk=STREAM#<request-id>, sk=F#<00000001>``: ``frames`` (L of S, in order), ``first`` (the
  1-based number of its first frame), ``owner``, ``route``, ``expires_at`` (the same for every item
  of a stream), and ``end`` (BOOL) on the batch that holds the terminal frame.
- ``sk=F#~lost``: written instead of the terminal batch when frames had to be dropped (DynamoDB
  did not answer for too long): ``end`` and ``lost`` (BOOL), no frames. A reader serves the frames
  before the gap, then says the answer cannot be resumed.

The writer (``journal_writer.py``) batches frames and rides out DynamoDB stalls; the reader here
reads a record back for a resumed stream, with consistent reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from glm_relay.state.dynamo import FRAMES_PREFIX, Item, get_n, get_s, s
from glm_relay.state.journal_writer import (
    LOST_SK,
    Batching,
    JournalWriter,
    TableCalls,
    frames_sk,
    stream_pk,
)

__all__ = [
    "LOST_SK",
    "Batch",
    "Batching",
    "JournalWriter",
    "StreamJournal",
    "TableCalls",
    "frames_sk",
    "stream_pk",
]


@dataclass(frozen=True, slots=True)
class Batch:
    """One stored batch: frames ``first`` .. ``first + len(frames) - 1``; or the lost marker
    (``lost``, no frames), which ends a record whose later frames were dropped."""

    first: int
    frames: tuple[str, ...]
    owner: str
    route: str
    end: bool
    lost: bool = False

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

    async def head(self, request_id: str) -> Batch | None:
        """The stream's first stored item (a consistent read of one item), or ``None``: enough to
        tell whose stream it is, and the same small read whoever asks."""
        page = await self._table.call(
            "query",
            KeyConditionExpression="pk = :pk AND begins_with(sk, :frames)",
            ExpressionAttributeValues={
                ":pk": s(stream_pk(request_id)),
                ":frames": s(FRAMES_PREFIX),
            },
            ConsistentRead=True,
            Limit=1,
        )
        items = page.get("Items", [])
        if not items or get_n(items[0], "expires_at") <= int(self._wall()):
            return None
        return _batch(items[0])

    async def read(self, request_id: str, *, after: int = 0) -> list[Batch]:
        """The stored batches from frame ``after + 1`` on, in order and up to the first gap
        (a batch still being written), then the lost marker if there is one, with consistent
        reads; expired ones are left out.

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
        gap = False
        while True:
            page = await self._table.call("query", **params)
            for item in page.get("Items", []):
                if get_n(item, "expires_at") <= now:
                    return batches
                batch = _batch(item)
                if batch.lost:
                    return [*batches, batch]  # the last item: nothing follows the gap it marks
                if batch.first > expected:
                    gap = True  # the missing batch is not visible yet: look only for the marker
                if not gap and batch.next > expected:
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
        lost=bool(item.get("lost", {}).get("BOOL")),
    )
