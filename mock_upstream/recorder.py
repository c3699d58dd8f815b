"""The request log and stream counters behind `/_mock/requests` and `/_mock/stats`.

Everything here is touched only from the server's event loop, so it needs no locks; tests in
other threads read it over HTTP.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RequestRecord:
    """One request as the server saw it, updated while its response is being played."""

    seq: int
    time: float
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    stream: bool = False
    authorization: str | None = None  # the header as received
    auth: str | None = None  # "jwt" | "api_key" | "missing" | "invalid"
    key_id: str | None = None  # the accepted key the request was signed with
    jwt_claims: dict[str, Any] | None = None
    jwt_header: dict[str, Any] | None = None
    directives: dict[str, Any] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    status: int | None = None
    error_code: str | None = None
    chunks_sent: int = 0
    outcome: str = "pending"  # pending | open | completed | client_gone | dropped | aborted
    client_gone: bool = False
    ended: float | None = None
    counted: bool = False  # an SSE response, counted in the stream statistics

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "stream": self.stream,
            "authorization": self.authorization,
            "auth": self.auth,
            "key_id": self.key_id,
            "jwt_claims": self.jwt_claims,
            "jwt_header": self.jwt_header,
            "directives": self.directives,
            "faults": self.faults,
            "status": self.status,
            "error_code": self.error_code,
            "chunks_sent": self.chunks_sent,
            "outcome": self.outcome,
            "client_gone": self.client_gone,
            "ended": self.ended,
        }


# A long `make run` session should not grow without bound; tests never get near this.
MAX_RECORDS = 10_000


class Recorder:
    """Keeps the log (the latest `MAX_RECORDS`) and the counters; `clear()` starts both afresh
    (open streams stay open)."""

    def __init__(self) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=MAX_RECORDS)
        self._seq = 0
        self.open_streams = 0
        self._counts = self._zero()

    @staticmethod
    def _zero() -> dict[str, int]:
        return {"requests": 0, "completed_streams": 0, "cancelled_streams": 0, "dropped_streams": 0}

    def new(self, method: str, path: str, headers: dict[str, str], body: Any) -> RequestRecord:
        self._seq += 1
        self._counts["requests"] += 1
        record = RequestRecord(self._seq, time.time(), method, path, headers, body)
        self._records.append(record)
        return record

    def opened(self, record: RequestRecord, streaming: bool) -> None:
        record.outcome = "open"
        record.counted = streaming
        if streaming:
            self.open_streams += 1

    def closed(self, record: RequestRecord, outcome: str) -> None:
        """Called exactly once per opened record, whatever ended it."""
        record.outcome = outcome
        record.client_gone = outcome == "client_gone"
        record.ended = time.time()
        if not record.counted:
            return
        self.open_streams -= 1
        counter = {
            "completed": "completed_streams",
            "client_gone": "cancelled_streams",
            "dropped": "dropped_streams",
        }.get(outcome)
        if counter:
            self._counts[counter] += 1

    def requests(self) -> list[dict[str, Any]]:
        return [record.as_json() for record in self._records]

    def stats(self) -> dict[str, int]:
        return {**self._counts, "open_streams": self.open_streams}

    def clear(self) -> None:
        self._records.clear()
        self._counts = self._zero()
