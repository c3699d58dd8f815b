"""Many concurrent streams through the whole local stack, each checked byte for byte.

Starts the ``make run`` stack in this process (moto, the fake Zhipu in its own process, the local
streaming function URL in a background thread; access tokens on), opens N concurrent
``GET /chat`` streams with distinct prompts, and checks that every answer is exactly the upstream's
text for its prompt, ends with exactly one ``done`` and nothing after it, and that no stream was
lost or sent upstream twice. Then it prints first-token and full-stream latency percentiles and
the aggregate chunk rate. Loopback only; bounded by ``--timeout``.

    python -m bench.load [--streams 200] [--chunks 50] [--delay-ms 5] [--json out.json]

The relay, the fake upstream and this load generator share the machine (and the relay shares
this interpreter), so the numbers are a floor for the relay, not a measurement of Lambda.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

ROOT = Path(__file__).resolve().parents[1]
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


@dataclass
class StreamRun:
    """What one client saw."""

    index: int
    prompt: str
    started: float = 0.0
    first_token: float | None = None  # seconds from start to the first chat event
    finished: float | None = None  # seconds from start to the end of the body
    status: int | None = None
    names: list[str] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)
    terminal: dict[str, Any] | None = None
    trailing: bytes = b""  # bytes after the last complete frame
    error: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.problems


def _import_path() -> None:
    """Let ``python -m bench.load`` from the repository root import the function's package."""
    for path in (ROOT / "functions" / "relay", ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def _parse_frames(buffer: bytes, run: StreamRun, now: float) -> bytes:
    while b"\n\n" in buffer:
        frame, buffer = buffer.split(b"\n\n", 1)
        name, data = "message", []
        for line in frame.decode("utf-8").split("\n"):
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
        if not data:
            continue
        run.names.append(name)
        payload = json.loads("\n".join(data))
        if name == "chat":
            if run.first_token is None:
                run.first_token = now - run.started
            run.chunks.append(payload["content"])
        elif name in ("done", "error"):
            run.terminal = {"event": name, **payload}
    return buffer


async def _one_stream(
    client: httpx.AsyncClient, url: str, token: str, run: StreamRun, start: asyncio.Event
) -> None:
    """Open one stream when ``start`` is set and read it to its end."""
    await start.wait()
    run.started = time.perf_counter()
    try:
        async with client.stream(
            "GET",
            f"{url}/chat",
            params={"q": run.prompt},
            headers={"Accept": "text/event-stream", "Authorization": f"Bearer {token}"},
        ) as response:
            run.status = response.status_code
            buffer = b""
            async for chunk in response.aiter_raw():
                buffer = _parse_frames(buffer + chunk, run, time.perf_counter())
            run.trailing = buffer
        run.finished = time.perf_counter() - run.started
    except Exception as exc:  # a broken stream is a result, not a crash
        run.error = f"{type(exc).__name__}: {exc}"


async def _drive(url: str, tokens: list[str], runs: list[StreamRun], timeout: float) -> float:
    """All streams at once; returns the wall time from the start signal to the last end."""
    limits = httpx.Limits(max_connections=len(runs) + 8, max_keepalive_connections=len(runs) + 8)
    transport = httpx.AsyncHTTPTransport(limits=limits, socket_options=NODELAY)
    async with httpx.AsyncClient(
        transport=transport, timeout=httpx.Timeout(timeout), trust_env=False
    ) as client:
        start = asyncio.Event()
        tasks = [
            asyncio.create_task(_one_stream(client, url, tokens[r.index % len(tokens)], r, start))
            for r in runs
        ]
        await asyncio.sleep(0)
        began = time.perf_counter()
        start.set()
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for run in runs:
            if run.finished is None and run.error is None:
                run.error = f"not finished within {timeout:g} s"
        return time.perf_counter() - began


def _verify(runs: list[StreamRun], records: list[dict[str, Any]], chunks: int) -> None:
    from mock_upstream.answer import expected_chunks

    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        body = record.get("body")
        if isinstance(body, dict) and body.get("messages"):
            by_prompt.setdefault(body["messages"][-1]["content"], []).append(body)
    for run in runs:
        if run.error:
            continue
        sent = by_prompt.get(run.prompt, [])
        if len(sent) != 1:
            run.problems.append(f"{len(sent)} upstream requests for this prompt")
        if run.status != 200:
            run.problems.append(f"status {run.status}")
        terminals = [n for n in run.names if n in ("done", "error")]
        if terminals != ["done"] or run.names[-1:] != ["done"]:
            run.problems.append(f"terminal events {terminals}, last {run.names[-1:]}")
        if run.names[:1] != ["meta"]:
            run.problems.append("no meta event first")
        if run.trailing:
            run.problems.append(f"{len(run.trailing)} bytes after the last frame")
        if run.terminal and run.terminal.get("finish_reason") != "stop":
            run.problems.append(f"finish_reason {run.terminal.get('finish_reason')}")
        if sent and run.chunks != expected_chunks(sent[0]):
            run.problems.append("text differs from the upstream's answer")
        if len(run.chunks) != chunks:
            run.problems.append(f"{len(run.chunks)} chat events, expected {chunks}")


def _percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def rank(p: float) -> float | None:
        if not ordered:
            return None
        index = max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))
        return ordered[index] * 1000

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": rank(100)}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _report(args: argparse.Namespace, runs: list[StreamRun], wall: float, out: TextIO) -> dict:
    ok = [r for r in runs if r.ok]
    first = _percentiles([r.first_token for r in ok if r.first_token is not None])
    full = _percentiles([r.finished for r in ok if r.finished is not None])
    chat_events = sum(len(r.chunks) for r in ok)
    failures: dict[str, int] = {}
    for run in runs:
        for reason in [run.error] if run.error else run.problems:
            failures[reason] = failures.get(reason, 0) + 1
    summary = {
        "streams": args.streams,
        "chunks_per_stream": args.chunks,
        "delay_ms": args.delay_ms,
        "state": not args.no_state,
        "callers": args.callers or args.streams,
        "ok": len(ok),
        "failed": len(runs) - len(ok),
        "total_seconds": round(wall, 3),
        "first_token_ms": first,
        "full_stream_ms": full,
        "chunks_per_second": round(chat_events / wall, 1) if wall else None,
        "failures": failures,
    }
    ideal = args.chunks * args.delay_ms
    rows = [
        ("streams ok / failed", f"{len(ok)} / {len(runs) - len(ok)}"),
        ("total time", f"{wall:.2f} s"),
        ("time to first token p50 / p90 / p99", " / ".join(_ms(first[p]) for p in _P)),
        ("full stream p50 / p90 / p99", " / ".join(_ms(full[p]) for p in _P)),
        ("slowest stream", _ms(full["max"])),
        ("chunks/s (aggregate)", f"{summary['chunks_per_second']:,.0f}"),
        ("upstream pacing alone", f"{ideal:,} ms per stream"),
    ]
    width = max(len(name) for name, _ in rows)
    print(
        f"\nglm-relay load: {args.streams} concurrent streams x {args.chunks} chunks, "
        f"{args.delay_ms} ms apart at the upstream"
        f" ({args.callers or args.streams} callers, "
        f"{'quotas in moto' if not args.no_state else 'no state table'})",
        file=out,
    )
    for name, value in rows:
        print(f"  {name:<{width}}  {value}", file=out)
    for reason, count in sorted(failures.items(), key=lambda item: -item[1])[:10]:
        print(f"  FAILED x{count}: {reason}", file=out)
    out.flush()
    return summary


_P = ("p50", "p90", "p99")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--delay-ms", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=120.0, help="bound for the whole run")
    parser.add_argument("--json", metavar="PATH", help="also write the summary as JSON")
    parser.add_argument(
        "--callers",
        type=int,
        default=0,
        help="distinct access-token subjects, streams spread over them (default: one per stream)",
    )
    parser.add_argument(
        "--no-state", action="store_true", help="no DynamoDB table: skip quota bookkeeping"
    )
    parser.add_argument(
        "--relay-log", metavar="PATH", help="where the function's log lines go (default: dropped)"
    )
    args = parser.parse_args(argv)
    if args.streams < 1 or args.chunks < 1 or args.delay_ms < 0 or args.callers < 0:
        parser.error(
            "--streams and --chunks must be positive, --delay-ms and --callers not negative"
        )

    _import_path()
    from devtools.stack import DevStack
    from glm_relay.access import TokenLimits, mint_access_token

    out = sys.stdout
    # The function logs one summary line and one metrics line per request; they are written
    # (that work is part of serving a request) but not to this report.
    relay_log = open(args.relay_log or os.devnull, "w")  # noqa: SIM115 - closed below
    overrides: dict[str, Any] = {}
    if args.no_state:
        overrides["conversations_table"] = ""
    stack = DevStack(settings_overrides=overrides)
    runs = [
        StreamRun(i, f"load test {i} #chunks={args.chunks} #delay={args.delay_ms}")
        for i in range(args.streams)
    ]
    started = time.monotonic()
    sys.stdout = relay_log
    try:
        with stack.running() as running:
            assert running.upstream is not None
            print(f"stack ready in {time.monotonic() - started:.1f} s", file=out, flush=True)
            unlimited = TokenLimits(requests_per_day=10**9, tokens_per_day=10**12)
            tokens = [
                mint_access_token(f"load-{n}", 3600, running.access_token_secret, limits=unlimited)
                for n in range(args.callers or args.streams)
            ]
            with httpx.Client(timeout=30, trust_env=False) as http:
                # Warm up: the secret read, the JWT, the imports and the first connections.
                warm = http.get(
                    f"{running.url}/chat",
                    params={"q": "warm up #chunks=2"},
                    headers={"Authorization": f"Bearer {tokens[0]}"},
                )
                if warm.status_code != 200 or "event: done" not in warm.text:
                    raise RuntimeError(f"warm-up failed: {warm.status_code} {warm.text[:200]}")
                http.delete(f"{running.upstream.origin}/_mock/requests")
                wall = asyncio.run(_drive(running.url, tokens, runs, args.timeout))
                records = http.get(f"{running.upstream.origin}/_mock/requests").json()
                stats = http.get(f"{running.upstream.origin}/_mock/stats").json()
            _verify(runs, records["requests"], args.chunks)
    finally:
        sys.stdout = out
        relay_log.close()

    summary = _report(args, runs, wall, out)
    summary["upstream_stats"] = stats
    print(f"  upstream: {json.dumps(stats)}", file=out)
    if args.json:
        detail = [
            {k: v for k, v in asdict(r).items() if k not in ("chunks", "names", "trailing")}
            for r in runs
            if not r.ok
        ]
        Path(args.json).write_text(json.dumps({**summary, "failed_streams": detail}, indent=2))
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
