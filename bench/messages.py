"""The Messages API row: what ``/v1/messages`` adds over ``/v1/chat/completions``.

Both front ends run in the same function process (the latency suite's "ours") on the same chat
core; only the request and wire formats differ. Each round asks both for the same ``#stamp``
answer (per-chunk latency: received minus the upstream's send time, p50) and the same short
answer (warm first token: request sent to first text), interleaved and rotated; the figures are
the medians of the Messages minus Chat Completions differences. The target: within 0.05 ms per
chunk and 0.5 ms to the first token.

    python -m bench --only latency
"""

from __future__ import annotations

import json
from functools import partial

from bench.common import Figure, Timing, median, percentile
from bench.timing import BENCH_MODEL, MESSAGES_CONTENT, OPENAI_CONTENT, interleaved, stream

STAMPED = "per-chunk latency #stamp #chunks=200 #delay=5"
FIRST_TOKEN = "first token #chunks=3"
PATHS = {"chat_completions": "/v1/chat/completions", "messages": "/v1/messages"}
CONTENT = {"chat_completions": OPENAI_CONTENT, "messages": MESSAGES_CONTENT}
END = {"chat_completions": b"data: [DONE]", "messages": b"event: message_stop"}


def _request(address: tuple[str, int], api: str, question: str) -> bytes:
    host, port = address
    body = json.dumps(
        {
            "model": BENCH_MODEL,
            "max_tokens": 10000,
            "stream": True,
            "messages": [{"role": "user", "content": question}],
        }
    ).encode()
    return (
        f"POST {PATHS[api]} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def ask(address: tuple[str, int], api: str, question: str, *, stamps: bool = False) -> Timing:
    """One streamed answer from ``api`` (``chat_completions`` or ``messages``), timed."""
    request = _request(address, api, question)
    return stream(address, request, end_marker=END[api], stamps=stamps, content=CONTENT[api])


def rows(address: tuple[str, int], *, quick: bool = False) -> list[Figure]:
    """The per-chunk and first-token figures of ``/v1/messages`` against ``/v1/chat/completions``
    on the function at ``address``."""

    def chunk_p50(api: str) -> float:
        timing = ask(address, api, STAMPED, stamps=True)
        if len(timing.stamps) != 200:
            raise RuntimeError(f"{api}: {len(timing.stamps)} stamped chunks, not 200")
        return percentile(timing.latencies_ms, 50)

    def first(api: str) -> float:
        return ask(address, api, FIRST_TOKEN).first_content_ms

    chunks = interleaved({api: partial(chunk_p50, api) for api in PATHS}, 3 if quick else 9)
    firsts = interleaved({api: partial(first, api) for api in PATHS}, 8 if quick else 30)
    figures = []
    for key, name, seen, target in (
        ("messages_chunk_added_p50", "/v1/messages per-chunk p50, over /v1", chunks, 0.05),
        ("messages_first_token_added", "/v1/messages first token, over /v1", firsts, 0.5),
    ):
        ours, reference = median(seen["messages"]), median(seen["chat_completions"])
        figures.append(
            Figure(
                key=key,
                name=name,
                unit="ms",
                ours=ours - reference,
                target=f"< {target} ms",
                met=ours - reference < target,
                note=f"/v1/messages {ours:.3f} ms, /v1/chat/completions {reference:.3f} ms",
                runs=len(seen["messages"]),
                detail=seen,
            )
        )
    return figures
