"""The front ends side by side: ``/v1/responses`` and ``/v1/messages`` beside
``/v1/chat/completions``.

All are served by the same function process (``latency.start_ours``) from the same chat core;
only the wire format differs (Responses events with items and sequence numbers, Anthropic's
Messages events, or ``chat.completion.chunk`` frames). Measured in the same rounds as the fake
Zhipu itself:

- per-chunk added latency p50: ``#stamp`` answers, 200 chunks 5 ms apart, each chunk's added
  latency over the direct stream of the same round; the figure is the median over rounds;
- warm first token added: request sent to the first text delta, minus the direct figure.

The Responses API and the Messages API may each add at most 0.05 ms per chunk and 0.5 ms to the
first token over Chat Completions (issues 22 and 23).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import Figure, Timing, median, percentile
from bench.timing import BENCH_MODEL, MAX_TOKENS_CAP, interleaved, post_request, rotated, stream

STAMPED = "per-chunk latency #stamp #chunks=200 #delay=5"
FIRST_TOKEN = "first token #chunks=3"
CHUNK_BUDGET_MS = 0.05
FIRST_TOKEN_BUDGET_MS = 0.5


@dataclass(frozen=True)
class FrontEnd:
    """One endpoint of the relay: how to ask it and how its answer reads."""

    path: str
    end_marker: bytes
    content_marker: bytes
    stamp: re.Pattern[bytes]

    def body(self, question: str) -> dict[str, Any]:
        common = {"model": BENCH_MODEL, "stream": True}
        if self.path == "/v1/responses":
            return {**common, "input": question, "max_output_tokens": int(MAX_TOKENS_CAP)}
        return {
            **common,
            "messages": [{"role": "user", "content": question}],
            "max_tokens": int(MAX_TOKENS_CAP),
        }

    def ask(self, address: tuple[str, int], question: str, *, stamps: bool = False) -> Timing:
        request = post_request(*address, self.path, self.body(question))
        return stream(
            address,
            request,
            end_marker=self.end_marker,
            stamps=stamps,
            content_marker=self.content_marker,
            stamp_pattern=self.stamp,
        )


COMPLETIONS = FrontEnd(
    "/v1/chat/completions",
    b"data: [DONE]",
    b'"delta":{"content":"',  # not the opening chunk's empty content
    re.compile(rb'"content":"(\d{19}) "'),
)
RESPONSES = FrontEnd(
    "/v1/responses",
    b"event: response.completed",
    b'"type":"response.output_text.delta"',
    re.compile(rb'"delta":"(\d{19}) "'),
)
MESSAGES = FrontEnd(
    "/v1/messages",
    b"event: message_stop",
    b'"text_delta","text":"',  # not the text block's empty start
    re.compile(rb'"text_delta","text":"(\d{19}) "'),
)


def figures(direct: Any, ours: tuple[str, int], *, rounds: int, requests: int) -> list[Figure]:
    """Two rows per front end over Chat Completions; ``direct(question, stamps)`` asks the
    fake Zhipu itself."""
    ends = {end.path: end for end in (COMPLETIONS, RESPONSES, MESSAGES)}

    def ask(name: str, question: str, stamps: bool = False) -> Timing:
        if name == "direct":
            return direct(question, stamps)
        return ends[name].ask(ours, question, stamps=stamps)

    for name in ("direct", *ends):  # warm: first-use imports of each front end
        ask(name, FIRST_TOKEN)
    added: dict[str, list[float]] = {name: [] for name in ends}
    for index in range(rounds):
        seen = {}
        for name in rotated(["direct", *ends], index):
            timing = ask(name, STAMPED, stamps=True)
            if len(timing.stamps) != 200:
                raise RuntimeError(f"{name}: {len(timing.stamps)} stamped chunks, not 200")
            seen[name] = percentile(timing.latencies_ms, 50)
        for name in ends:
            added[name].append(seen[name] - seen["direct"])
    chunk = {name: median(values) for name, values in added.items()}

    def first(name: str) -> Callable[[], float]:
        return lambda: ask(name, FIRST_TOKEN).first_content_ms

    firsts = interleaved({name: first(name) for name in ("direct", *ends)}, requests, warm_up=0)
    direct_first = median(firsts["direct"])
    first_added = {name: median(firsts[name]) - direct_first for name in ends}
    rows = []
    for end in (RESPONSES, MESSAGES):
        key = end.path.rsplit("/", 1)[1]
        rows += [
            _over_completions(
                end.path,
                f"{key}_chunk_added_p50",
                "per-chunk added latency p50",
                (chunk[end.path], chunk[COMPLETIONS.path], CHUNK_BUDGET_MS),
                "200 chunks 5 ms apart",
                rounds,
                added,
            ),
            _over_completions(
                end.path,
                f"{key}_first_token_added_warm",
                "first token added, warm",
                (first_added[end.path], first_added[COMPLETIONS.path], FIRST_TOKEN_BUDGET_MS),
                f"direct {direct_first:.3f} ms",
                requests,
                firsts,
            ),
        ]
    return rows


def _over_completions(
    path: str,
    key: str,
    what: str,
    figures: tuple[float, float, float],
    note: str,
    runs: int,
    detail: dict[str, list[float]],
) -> Figure:
    """A row with Chat Completions as its baseline and the budget over it as its target."""
    ours, completions, budget = figures
    return Figure(
        key=key,
        name=f"{path}: {what}",
        unit="ms",
        ours=ours,
        baseline=completions,
        target=f"<= baseline + {budget} ms",
        met=ours - completions <= budget,
        note=f"baseline: /v1/chat/completions, {ours - completions:+.3f} ms; {note}",
        runs=runs,
        detail=detail,
    )
