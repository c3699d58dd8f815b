"""``python -m bench`` (``make bench``): every figure of the performance targets, in one table.

Each figure sets ours beside the baseline (the same handler logic under uvicorn + Starlette, the
Lambda Web Adapter shape) and the target, measured in the same run on this machine over
loopback. First the deployed configuration (``bench/deployed.py``: HTTPS upstream, access tokens,
quotas and conversations in moto): warm first token and cold start. Then the function without
its table over plain HTTP: per-chunk added latency, warm first-token latency, throughput
(``bench/latency.py``), cold start, handler import and the secret read (``bench/coldstart.py``),
and memory over 100 invocations (``bench/memory.py``). Last, the deployed configuration again
over a shaped network (``bench/wan.py``: Zhipu 100 ms away, DynamoDB 2 ms): cold and warm first
token with and without the quota overlap, and the round trips of the cold path. Numbers are
medians of repeated runs.

    python -m bench                 # the whole suite, about two and a half minutes
    python -m bench --quick         # fewer repetitions, under a minute
    python -m bench --json out.json # also write every figure, with its raw samples
    python -m bench --only deployed,wan
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Figure, fmt, machine, running_backends

SUITES = ("deployed", "latency", "coldstart", "memory", "wan")


def _run_suite(name: str, backends: Any, quick: bool) -> list[Figure]:
    if name == "deployed":
        from bench import deployed

        return deployed.run(backends, quick=quick)
    if name == "wan":
        from bench import wan

        return wan.run(backends, quick=quick)
    if name == "latency":
        from bench import latency

        return latency.run(backends, quick=quick)
    if name == "coldstart":
        from bench import coldstart

        return coldstart.run(backends, quick=quick)
    from bench import memory

    return memory.run(backends, quick=quick)


def table(figures: list[Figure]) -> str:
    """A Markdown table (it reads as plain text too), then the notes."""
    rows = [("figure", "ours", "baseline", "target", "met?")]
    for figure in figures:
        met = "" if figure.met is None else ("yes" if figure.met else "NO")
        rows.append(
            (
                figure.name,
                fmt(figure.ours, figure.unit),
                fmt(figure.baseline, figure.unit),
                figure.target or "(info)",
                met,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if index == 0:
            lines.append("| " + " | ".join("-" * width for width in widths) + " |")
    notes = [f"- {figure.name}: {figure.note}" for figure in figures if figure.note]
    return "\n".join([*lines, "", *notes])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (< 1 minute)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures as JSON")
    parser.add_argument(
        "--only", default=",".join(SUITES), help=f"comma-separated subset of {', '.join(SUITES)}"
    )
    args = parser.parse_args(argv)
    suites = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(suites) - set(SUITES))
    if unknown:
        parser.error(f"unknown suite: {', '.join(unknown)}")

    started = time.monotonic()
    figures: list[Figure] = []
    with running_backends() as backends:
        for name in SUITES:
            if name not in suites:
                continue
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            suite_started = time.monotonic()
            figures.extend(_run_suite(name, backends, args.quick))
            elapsed = time.monotonic() - suite_started
            print(f"[bench] {name} done in {elapsed:.0f} s", file=sys.stderr, flush=True)
    duration = time.monotonic() - started

    info = machine()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"glm-relay benchmarks ({'quick' if args.quick else 'full'}, {duration:.0f} s) on "
        f"{info['cpu']}, {info['cores']} cores, {info['memory_mb'] / 1024:.0f} GB, "
        f"{info['os']}, Python {info['python']}; load average at the end {load:.2f}\n"
    )
    print(table(figures))
    targeted = [figure for figure in figures if figure.met is not None]
    failed = [figure.name for figure in targeted if not figure.met]
    print(f"\n{len(targeted) - len(failed)} of {len(targeted)} targets met")
    if failed:
        print("not met: " + "; ".join(failed))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python -m bench" + (" --quick" if args.quick else ""),
            "machine": {**info, "load_average": load},
            "duration_s": round(duration, 1),
            "figures": [figure.as_json() for figure in figures],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
