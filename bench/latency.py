"""Warm-path figures: per-chunk latency, first token, throughput; direct vs ours vs baseline.

Three ways to the same fake Zhipu, measured in the same run by the same client:

- direct: the client asks the fake Zhipu itself (what the relay's own client would see);
- ours: the function's local URL (``python -m devtools.local_url``, the real handler, secret read
  through the Parameters and Secrets extension stand-in), in its own process;
- baseline: the same handler logic under uvicorn + Starlette (``bench/baseline_relay.py``, the
  Lambda Web Adapter shape, secret through the SDK), in its own process;
- floor (per-chunk latency only): a do-nothing asyncio proxy (``bench/null_proxy.py``).

Per-chunk latency uses ``#stamp`` answers (each chunk's text is its send time in epoch ns):
received minus sent, per chunk. "Added" is a relay's percentile minus the direct percentile of
the same round; the figure is the median over rounds. Time to first token is from sending the
request to the first content arriving. Throughput is one 5,000-chunk answer with no delay.

    python -m bench.latency [--quick] [--json out.json]
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from bench import front_ends
from bench.common import (
    Backends,
    Child,
    Figure,
    Timing,
    median,
    percentile,
    python_env,
    relay_request,
    stream,
    upstream_request,
)
from bench.timing import interleaved, rotated

STAMPED = "per-chunk latency #stamp #chunks=200 #delay=5"
FIRST_TOKEN = "first token #chunks=3"
THROUGHPUT = "throughput #chunks=5000 #delay=0"
RELAY_END = b"event: done"
UPSTREAM_END = b"data: [DONE]"


@dataclass
class Target:
    """One way to the answer: where to connect and how to ask."""

    name: str
    address: tuple[str, int]
    base_path: str = ""  # set for the fake Zhipu itself

    def ask(self, question: str, *, stamps: bool = False) -> Timing:
        host, port = self.address
        if self.base_path:
            request = upstream_request(host, port, self.base_path, question)
            return stream(self.address, request, end_marker=UPSTREAM_END, stamps=stamps)
        request = relay_request(host, port, question)
        return stream(self.address, request, end_marker=RELAY_END, stamps=stamps)


def start_ours(backends: Backends) -> Child:
    """The function's local URL in its own process, reading its secret through the extension."""
    return Child(
        [sys.executable, "-m", "devtools.local_url", "--port", "0"],
        python_env(backends.relay_env("extension")),
        ready_prefix="function URL listening on ",
    )


def start_baseline(backends: Backends, secrets: str = "sdk") -> Child:
    """The uvicorn + Starlette baseline in its own process."""
    return Child(
        [sys.executable, "-m", "bench.baseline_relay", "--port", "0"],
        python_env(backends.relay_env(secrets)),
        ready_prefix="baseline relay ready port=",
    )


def _address(url_or_port: str) -> tuple[str, int]:
    if url_or_port.isdigit():
        return "127.0.0.1", int(url_or_port)
    host, _, port = url_or_port.split("//", 1)[1].rstrip("/").rpartition(":")
    return host, int(port)


def start_floor(backends: Backends) -> Child:
    """The do-nothing proxy in front of the fake Zhipu (``bench/null_proxy.py``)."""
    host, port = backends.upstream_address
    return Child(
        [sys.executable, "-m", "bench.null_proxy", host, str(port)],
        python_env(),
        ready_prefix="null proxy ready port=",
    )


def targets(
    backends: Backends, ours: Child, baseline: Child, floor: Child | None = None
) -> dict[str, Target]:
    base_path = "/" + backends.upstream_base_url.split("//", 1)[1].split("/", 1)[1]
    ways = {
        "direct": Target("direct", backends.upstream_address, base_path),
        "ours": Target("ours", _address(ours.ready_line)),
        "baseline": Target("baseline", _address(baseline.ready_line)),
    }
    if floor is not None:
        ways["floor"] = Target("floor", _address(floor.ready_line), base_path)
    return ways


def per_chunk(ways: dict[str, Target], rounds: int) -> list[Figure]:
    relays = [name for name in ways if name != "direct"]
    added: dict[str, dict[str, list[float]]] = {name: {"p50": [], "p99": []} for name in relays}
    direct: dict[str, list[float]] = {"p50": [], "p99": []}
    for index in range(rounds):
        seen: dict[str, list[float]] = {}
        for name in rotated(list(ways), index):
            timing = ways[name].ask(STAMPED, stamps=True)
            if len(timing.stamps) != 200:
                raise RuntimeError(f"{name}: {len(timing.stamps)} stamped chunks, not 200")
            seen[name] = timing.latencies_ms
        for pct in ("p50", "p99"):
            reference = percentile(seen["direct"], float(pct[1:]))
            direct[pct].append(reference)
            for name in relays:
                added[name][pct].append(percentile(seen[name], float(pct[1:])) - reference)
    figures = []
    for pct, target in (("p50", 0.3), ("p99", 1.0)):
        ours, baseline = median(added["ours"][pct]), median(added["baseline"][pct])
        note = f"direct {pct} {median(direct[pct]):.3f} ms; 200 chunks 5 ms apart"
        if "floor" in added:
            note += (
                f"; a do-nothing asyncio proxy adds {median(added['floor'][pct]):.3f} ms "
                "(the floor of one more Python hop)"
            )
        figures.append(
            Figure(
                key=f"chunk_added_{pct}",
                name=f"per-chunk added latency {pct}",
                unit="ms",
                ours=ours,
                baseline=baseline,
                target=f"< {target} ms",
                met=ours < target,
                note=note,
                runs=rounds,
                detail={name: values[pct] for name, values in added.items()},
            )
        )
    return figures


def first_token(ways: dict[str, Target], requests: int) -> Figure:
    asks = {
        name: (lambda way=way: way.ask(FIRST_TOKEN).first_content_ms)
        for name, way in ways.items()
        if name != "floor"
    }
    seen = interleaved(asks, requests, warm_up=0)
    direct = median(seen["direct"])
    ours, baseline = median(seen["ours"]) - direct, median(seen["baseline"]) - direct
    return Figure(
        key="first_token_added_warm",
        name="first token added, warm",
        unit="ms",
        ours=ours,
        baseline=baseline,
        target="< 2 ms",
        met=ours < 2.0,
        note=f"direct {direct:.3f} ms; new client connection each time",
        runs=requests,
        detail={name: values for name, values in seen.items()},
    )


def throughput(ways: dict[str, Target], runs: int) -> Figure:
    def rate(name: str) -> float:
        timing = ways[name].ask(THROUGHPUT)
        if timing.contents < 5000:
            raise RuntimeError(f"{name}: {timing.contents} chunks, not 5000")
        return 5000 / timing.total_s

    asks = {name: (lambda name=name: rate(name)) for name in ways if name != "floor"}
    rates = interleaved(asks, runs, warm_up=0)
    ours, baseline = median(rates["ours"]), median(rates["baseline"])
    return Figure(
        key="throughput",
        name="throughput, one 5,000-chunk stream",
        unit="chunks/s",
        ours=ours,
        baseline=baseline,
        target=">= 2x baseline",
        met=ours >= 2 * baseline,
        note=f"direct {median(rates['direct']):,.0f} chunks/s (the fake Zhipu's own ceiling)",
        runs=runs,
        detail=rates,
    )


def run(backends: Backends, *, quick: bool = False) -> list[Figure]:
    ours = start_ours(backends)
    baseline = start_baseline(backends)
    floor = start_floor(backends)
    try:
        ways = targets(backends, ours, baseline, floor)
        for _ in range(3):  # warm: secret read, JWT, upstream connection, first-use imports
            for name, way in ways.items():
                if name != "floor":
                    way.ask(FIRST_TOKEN)
        rounds, requests = (2, 8) if quick else (7, 25)
        figures = per_chunk(ways, rounds=rounds)
        figures.append(first_token(ways, requests=requests))
        figures.append(throughput(ways, runs=2 if quick else 5))
        direct = ways["direct"]
        figures += front_ends.figures(
            lambda question, stamps: direct.ask(question, stamps=stamps),
            ways["ours"].address,
            rounds=rounds,
            requests=requests,
        )
        return figures
    except Exception:
        print("ours:\n" + ours.output(), file=sys.stderr)
        print("baseline:\n" + baseline.output(), file=sys.stderr)
        raise
    finally:
        ours.stop()
        baseline.stop()
        floor.stop()


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import main as suite

    return suite(["--only", "latency", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
