"""Memory: the runtime process's resident size over 100 invocations, beside the baseline's.

Ours: the real runtime loop (the Lambda-shaped task root's bootstrap) served by the Runtime API
stand-in in this process, 100 ``GET /chat`` invocations of a 50-chunk answer one after another.
Baseline: ``bench/baseline_relay.py`` in its own task root, 100 requests of the same answer.
After each invocation the process's ``VmRSS`` is read from ``/proc/<pid>/status``; the peak is
its ``VmHWM`` at the end. "Growth" is the resident size after the last invocation minus after
the tenth (the first ones still import and allocate what the container keeps).

    python -m bench.memory [--quick] [--json out.json]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bench.common import (
    Backends,
    Child,
    Figure,
    chat_event,
    relay_request,
    stream,
)
from bench.lambda_site import LambdaSite

INVOCATIONS = 100
QUESTION = "memory #chunks=50 #delay=0"
HANDLER = "glm_relay.handler.handle"
GROWTH_LIMIT_MB = 1.0
PEAK_LIMIT_MB = 96.0


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in kB, from /proc."""
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm


async def _ours(backends: Backends, site: LambdaSite, secrets: str) -> tuple[list[int], int]:
    from devtools.fake_runtime_api import FakeRuntimeAPI

    async with FakeRuntimeAPI() as api:
        env = site.env(
            {
                **backends.relay_env(secrets),
                "_HANDLER": HANDLER,
                "AWS_LAMBDA_RUNTIME_API": api.address,
            }
        )
        process = await site.spawn_runtime(env)
        samples: list[int] = []
        try:
            for _ in range(INVOCATIONS):
                invocation = api.enqueue(chat_event(QUESTION))
                async with asyncio.timeout(30):
                    await invocation.done
                if b"event: done" not in invocation.body:
                    raise RuntimeError(f"invocation failed: {invocation.body[-300:]!r}")
                # The runtime is back on /next (idle) once the API saw the response end.
                samples.append(rss_kb(process.pid)[0])
            peak = rss_kb(process.pid)[1]
        finally:
            process.kill()
            await process.wait()
    return samples, peak


def _baseline(backends: Backends, site: LambdaSite) -> tuple[list[int], int]:
    child = Child(
        site.python("-m", "bench.baseline_relay", "--port", "0"),
        site.env(backends.relay_env("sdk"), repository=True),
        ready_prefix="baseline relay ready port=",
    )
    samples: list[int] = []
    try:
        port = int(child.ready_line)
        for _ in range(INVOCATIONS):
            stream(
                ("127.0.0.1", port),
                relay_request("127.0.0.1", port, QUESTION),
                end_marker=b"event: done",
            )
            samples.append(rss_kb(child.pid)[0])
        peak = rss_kb(child.pid)[1]
    finally:
        child.stop()
    return samples, peak


def _growth_mb(samples: list[int]) -> float:
    return (samples[-1] - samples[9]) / 1024


def run(backends: Backends, *, quick: bool = False) -> list[Figure]:
    with LambdaSite(compiled=True) as site, LambdaSite(baseline=True) as baseline_site:
        ours, ours_peak = asyncio.run(_ours(backends, site, "extension"))
        base, base_peak = _baseline(backends, baseline_site)
        detail: dict[str, object] = {"ours_rss_kb": ours, "baseline_rss_kb": base}
        note = f"{INVOCATIONS} invocations of a 50-chunk answer; Lambda-shaped package set"
        if not quick:
            sdk, sdk_peak = asyncio.run(_ours(backends, site, "sdk"))
            detail["ours_sdk_rss_kb"] = sdk
            note += f"; ours reading the secret through the SDK peaks at {sdk_peak / 1024:.1f} MB"
    growth, base_growth = _growth_mb(ours), _growth_mb(base)
    return [
        Figure(
            key="peak_rss",
            name="peak RSS over 100 invocations",
            unit="MB",
            ours=ours_peak / 1024,
            baseline=base_peak / 1024,
            target=f"< {PEAK_LIMIT_MB:g} MB",
            met=ours_peak / 1024 < PEAK_LIMIT_MB,
            note=note,
            runs=1,
            detail=detail,
        ),
        Figure(
            key="rss_growth",
            name="RSS growth, invocation 10 to 100",
            unit="MB",
            ours=growth,
            baseline=base_growth,
            target=f"flat (< {GROWTH_LIMIT_MB:g} MB)",
            met=growth < GROWTH_LIMIT_MB,
            note=f"RSS after invocation 10: {ours[9] / 1024:.1f} MB ours, "
            f"{base[9] / 1024:.1f} MB baseline",
            runs=1,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import main as suite

    return suite(["--only", "memory", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
