"""How fast the fake Zhipu server serves a long stream with no delay between chunks.

Starts `python -m mock_upstream` in its own process on loopback (so client and server do not share
an interpreter), streams a 5,000-chunk answer a few times and prints the median time from sending
the request to the last byte of `data: [DONE]`. Bounded: every run has a timeout and the server is
stopped whatever happens.

    python -m bench.bench_mock_upstream [--chunks 5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "benchid.0123456789abcdef0123456789abcdef"
READY_PREFIX = "mock_upstream ready base_url="
TIMEOUT_S = 30.0


def _start_server() -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "ZHIPU_API_KEY": API_KEY, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_upstream", "--host", "127.0.0.1", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith(READY_PREFIX):
        process.kill()
        raise RuntimeError(f"mock upstream did not start: {line!r}")
    return process, line.removeprefix(READY_PREFIX)


def _one_run(client: httpx.Client, base_url: str, chunks: int) -> float:
    body = {
        "model": "glm-4-flash",
        "messages": [{"role": "user", "content": f"benchmark #chunks={chunks} #delay=0"}],
        "stream": True,
    }
    started = time.perf_counter()
    with client.stream(
        "POST",
        base_url + "/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {API_KEY}"},
    ) as response:
        response.raise_for_status()
        raw = b"".join(response.iter_raw())
    elapsed = time.perf_counter() - started
    frames = raw.count(b"\n\ndata: ") + 1
    if not raw.endswith(b"data: [DONE]\n\n") or frames != chunks + 2:
        raise RuntimeError(f"unexpected stream: {frames} frames, ends {raw[-30:]!r}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    process, base_url = _start_server()
    try:
        transport = httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )
        with httpx.Client(transport=transport, timeout=TIMEOUT_S, trust_env=False) as client:
            _one_run(client, base_url, 10)  # warm up: imports, first connection
            times = [_one_run(client, base_url, args.chunks) for _ in range(args.runs)]
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()

    median = statistics.median(times)
    print(
        f"mock_upstream: {args.chunks}-chunk stream, no delay: {median:.3f} s median "
        f"(best {min(times):.3f} s, worst {max(times):.3f} s, {args.runs} runs, "
        f"{args.chunks / median:,.0f} chunks/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
