"""The deployed configuration over a shaped network: Zhipu 100 ms away, AWS 2 ms away.

On loopback every round trip is free, so the cold path's connection set-up (a TCP handshake, a
TLS handshake, then the request) and the quota's DynamoDB call cost only CPU. Here they cost what
they would from a Lambda region: delaying proxies on loopback shape the links
(``bench/shaped_network.py``), and three ways take turns over them (``bench/wan_rounds.py``):
ours as shipped (the quota overlaps the upstream request), ours with ``QUOTA_OVERLAP=false`` (the
quota decides first) and the baseline (uvicorn + Starlette, SDK, boto3, the quota first), each in
the deployed configuration (access token, quota in DynamoDB).

This module turns the rounds into figures. Cold start: spawn to first token, split by the proxies'
records into init, the invocation to the upstream connection, the handshakes and the request to
the first token, and the round trips to Zhipu and to AWS before it. Warm: the first token each
relay adds over asking the fake Zhipu directly through the same proxy. And what the quota overlap
saves, cold and warm.

    python -m bench --only wan [--quick]
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench.common import Backends, Figure, median
from bench.shaped_network import shaped_network
from bench.wan_rounds import (
    BASELINE,
    OURS,
    STRICT,
    WAYS,
    ColdSample,
    cold_starts,
    warm_first_tokens,
)


def _overlap_saves(when: str, strict: list[float], ours: list[float], note: str) -> Figure:
    """QUOTA_OVERLAP=false minus true: the median of the rounds' differences (the ways take
    turns, so each pair shares the machine's load of the moment)."""
    return Figure(
        key=f"wan_overlap_saves_{when.split()[0]}",
        name=f"wan: what the quota overlap saves, {when}",
        unit="ms",
        ours=median([a - b for a, b in zip(strict, ours, strict=True)]),
        note=f"QUOTA_OVERLAP=false minus true, median of the rounds' differences; {note}",
        runs=len(ours),
    )


def figures(cold: dict[str, list[ColdSample]], warm: dict[str, list[float]]) -> list[Figure]:
    phases = {name: [s.phases_ms() for s in samples] for name, samples in cold.items()}

    def phase(name: str, key: str) -> float:
        return median([p[key] for p in phases[name]])

    def first_tokens(name: str) -> list[float]:
        return [p["first_token"] for p in phases[name]]

    def count(name: str, what: Callable[[ColdSample], int]) -> float:
        return median([what(sample) for sample in cold[name]])

    late = [
        ms
        for each in cold.values()
        for s in each
        for c in s.upstream + s.aws
        for ms in c.lateness_ms()
    ]
    handshakes = {name: phase(name, "connection_to_request") for name in WAYS}
    # The connection is opened ahead when the first invocation arrives; one opened during init
    # could also overlap its handshakes with init's imports.
    at_init = min(handshakes[OURS], phase(OURS, "spawn_to_invocation"))
    direct = median(warm["direct"])
    added = {name: median(warm[name]) - direct for name in WAYS}
    runs, rounds = len(cold[OURS]), len(warm["direct"])
    ours_cold, strict_cold, base_cold = (median(first_tokens(name)) for name in WAYS)
    return [
        Figure(
            key="wan_cold_start",
            name="wan: cold start, first token",
            unit="ms",
            ours=ours_cold,
            baseline=base_cold,
            note=(
                f"Zhipu at 100 ms RTT, DynamoDB and Secrets Manager at 2 ms; spawn to first "
                f"token ({ours_cold / base_cold:.0%} of the baseline); QUOTA_OVERLAP=false "
                f"{strict_cold:.0f} ms"
            ),
            runs=runs,
            detail={name: first_tokens(name) for name in WAYS},
        ),
        Figure(
            key="wan_spawn_to_connection",
            name="wan: cold start, spawn to upstream connection",
            unit="ms",
            ours=phase(OURS, "spawn_to_connection"),
            baseline=phase(BASELINE, "spawn_to_connection"),
            note=(
                f"ours: init (imports) {phase(OURS, 'spawn_to_invocation'):.0f} ms, then the "
                f"invocation to the connection {phase(OURS, 'invocation_to_connection'):.0f} ms "
                f"(the app built, httpx imported: the connection is opened ahead, "
                f"before the secrets and the token check); QUOTA_OVERLAP=false "
                f"{phase(STRICT, 'spawn_to_connection'):.0f} ms"
            ),
            runs=runs,
            detail=phases,
        ),
        Figure(
            key="wan_connection_to_request",
            name="wan: cold start, upstream connection to request sent",
            unit="ms",
            ours=handshakes[OURS],
            baseline=handshakes[BASELINE],
            note=(
                f"the TCP and TLS handshakes, overlapping the secret reads, the token check and "
                f"the pool, then any wait for the request; a connection opened during init could "
                f"hide up to {at_init:.0f} ms more of them"
            ),
            runs=runs,
        ),
        Figure(
            key="wan_round_trips",
            name="wan: cold start, round trips to Zhipu before the first token",
            unit="RTT",
            ours=count(OURS, lambda s: s.round_trips),
            baseline=count(BASELINE, lambda s: s.round_trips),
            note=(
                f"TCP, TLS, the request; request to first token "
                f"{phase(OURS, 'request_to_first_token'):.0f} ms; round trips to AWS before the "
                f"upstream connection: ours {count(OURS, lambda s: s.aws_round_trips):.0f}, "
                f"QUOTA_OVERLAP=false {count(STRICT, lambda s: s.aws_round_trips):.0f}, "
                f"baseline {count(BASELINE, lambda s: s.aws_round_trips):.0f}; the proxies' "
                f"timers were late by {median(late):.2f} ms (max {max(late, default=0):.1f})"
            ),
            runs=runs,
        ),
        _overlap_saves(
            "cold start",
            [p["invocation_to_first_token"] for p in phases[STRICT]],
            [p["invocation_to_first_token"] for p in phases[OURS]],
            "invocation to first token (init, which the overlap does not touch, varies by more)",
        ),
        Figure(
            key="wan_first_token_added_warm",
            name="wan: first token added, warm",
            unit="ms",
            ours=added[OURS],
            baseline=added[BASELINE],
            note=(
                f"direct {direct:.0f} ms (one round trip and the upstream's 150 ms); "
                f"QUOTA_OVERLAP=false {added[STRICT]:.1f} ms"
            ),
            runs=rounds,
            detail=warm,
        ),
        _overlap_saves("warm", warm[STRICT], warm[OURS], "first token"),
    ]


def run(backends: Backends, *, quick: bool = False) -> list[Figure]:
    with shaped_network(backends) as network:
        warm = warm_first_tokens(backends, network, requests=4 if quick else 12)
        cold = cold_starts(backends, network, runs=2 if quick else 5)
    return figures(cold, warm)


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import main as suite

    return suite(["--only", "wan", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
