"""What recording and resuming cost, measured by counting DynamoDB calls (the README's figures).

One answer paced like a model writing 50 tokens a second (``#delay=20``) is recorded; its client
is cut at once and resumes, following the record to the end. Every content chunk carries its
upstream send time (``#stamp``), so the resumed client also measures how far behind the live
answer following the record runs.
"""

from __future__ import annotations

import statistics
import time
from urllib.parse import quote

import pytest

from glm_relay.state.journal import Batching
from glm_relay.web.resume import TAIL_INTERVAL
from tests.support.resume import Container, cut_after, wait_upstream_idle
from tests.support.sse_client import read_stream

pytestmark = pytest.mark.usefixtures("upstream_log")

CHUNKS, DELAY_MS = 120, 20


def test_cost_and_lag_of_a_recorded_and_resumed_answer(stack, client, container: Container) -> None:
    url = f"{container.url}/chat?q={quote(f'#stamp #chunks={CHUNKS} #delay={DELAY_MS}')}"
    url += f"&access_token={stack.token}"
    container.table.reset()
    started = time.monotonic()
    cut = cut_after(client, "GET", url, events=2)
    resumed_at = time.time()
    rest = read_stream(client, "GET", url, headers={"Last-Event-ID": cut.events[-1].id or ""})
    tailing = time.monotonic() - started
    wait_upstream_idle(stack, client)

    chats = [e for e in cut.events + rest.events if e.event == "chat"]
    assert len(chats) == CHUNKS and rest.terminal.event == "done"
    answer_seconds = (int(chats[-1].json["content"]) - int(chats[0].json["content"])) / 1e9
    lags = [
        e.received_at - int(e.json["content"]) / 1e9
        for e in rest.events
        if e.event == "chat" and int(e.json["content"]) / 1e9 > resumed_at + 0.1
    ]
    table = container.table
    per_minute = 60 / answer_seconds
    puts, queries = table.calls["put_item"], table.calls["query"]
    print(
        f"\nanswer {answer_seconds:.2f} s at {CHUNKS / answer_seconds:.0f} chunks/s: "
        f"{puts} writes ({puts * per_minute:.0f}/min), "
        f"{table.write_units} write units ({table.write_units * per_minute:.0f}/min); "
        f"following it for {tailing:.2f} s: {queries} consistent queries "
        f"({queries * 60 / tailing:.0f}/min), {table.read_units} read units "
        f"({table.read_units * 60 / tailing:.0f}/min); behind the live answer by "
        f"{statistics.median(lags) * 1000:.0f} ms median, {max(lags) * 1000:.0f} ms at most"
    )
    interval = Batching().interval
    assert puts <= answer_seconds / interval + 3
    assert queries <= tailing / TAIL_INTERVAL + 3
    assert max(lags) < interval + TAIL_INTERVAL + 0.5
