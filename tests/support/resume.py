"""Resume test support: a second container of the function (its own app and caches, sharing only
moto with the session stack, served as Lambda serves: a client that leaves does not stop its
answer) whose journal's DynamoDB calls are counted, and a client that hangs up mid-answer."""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from devtools.local_url import FunctionUrlConfig, ServingThread, serving_thread
from devtools.stack import DevStack
from glm_relay.state.dynamo import Table
from glm_relay.state.journal import StreamJournal
from glm_relay.web.app import WebApp
from glm_relay.web.services import Services
from tests.support.sse_client import StreamResult, parse_frames


def chat_url(base: str, question: str, token: str) -> str:
    """``GET /chat`` for ``question`` at ``base``, as the page's EventSource asks it."""
    return f"{base}/chat?q={quote(question)}&access_token={token}"


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item: names plus values (strings and numbers as their text)."""

    def size(value: dict[str, Any]) -> int:
        (kind, inner), *_ = value.items()
        if kind == "L":
            return 3 + sum(1 + size(v) for v in inner)
        if kind == "BOOL":
            return 1
        return len(str(inner).encode())

    return sum(len(name.encode()) + size(value) for name, value in item.items())


class CountingTable:
    """``Table.call`` with a count of operations and of the capacity units they cost: a write
    unit per started KB of item, a consistent read unit per started 4 KB a query returns."""

    def __init__(self, table: Table) -> None:
        self._table = table
        self.calls: Counter[str] = Counter()
        self.write_units = 0
        self.read_units = 0

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        self.calls[operation] += 1
        result = await self._table.call(operation, **params)
        if operation == "put_item":
            self.write_units += math.ceil(item_bytes(params["Item"]) / 1024)
        elif operation == "query":
            returned = sum(item_bytes(i) for i in result.get("Items", []))
            self.read_units += max(1, math.ceil(returned / 4096))
        return result

    def reset(self) -> None:
        self.calls.clear()
        self.write_units = self.read_units = 0


@dataclass
class Container:
    url: str
    serving: ServingThread
    table: CountingTable
    config: FunctionUrlConfig


@contextlib.contextmanager
def running_container(stack: DevStack) -> Iterator[Container]:
    assert stack.app is not None
    settings = stack.app.settings
    table = CountingTable(Table(settings.conversations_table))
    services = Services.from_settings(settings)
    services.journal = StreamJournal(table)
    app = WebApp(settings, services=services)
    config = FunctionUrlConfig(allowed_origins=settings.allowed_origins, keep_running=True)
    with serving_thread(app.handle, config) as serving:
        yield Container(serving.url, serving, table, config)


def cut_after(
    client: httpx.Client, method: str, url: str, events: int, **kwargs: Any
) -> StreamResult:
    """Read until ``events`` events arrived, then hang up mid-answer. ``raw`` holds the bytes of
    those events only (a partly received next event is not part of what the client has)."""
    headers = {"Accept": "text/event-stream", **kwargs.pop("headers", {})}
    with client.stream(method, url, headers=headers, **kwargs) as response:
        result = StreamResult(response.status_code, response.headers)
        received = buffer = b""
        for chunk in response.iter_raw():
            received += chunk
            buffer = parse_frames(buffer + chunk, result, time.time())
            if len(result.events) >= events:
                break
    result.raw = received[: len(received) - len(buffer)]
    return result


def wait_upstream_idle(stack: DevStack, client: httpx.Client, timeout: float = 10) -> dict:
    """The fake upstream's counters once no stream is open."""
    assert stack.upstream is not None
    deadline = time.monotonic() + timeout
    while True:
        stats = client.get(f"{stack.upstream.origin}/_mock/stats").json()
        if stats["open_streams"] == 0 or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)
