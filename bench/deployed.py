"""The headline: the function as the template deploys it, beside the baseline doing the same work.

The deployed configuration (``Backends.relay_env(..., deployed=True)``): the fake Zhipu over HTTPS
(a local test CA, trusted through ``TLS_CA_BUNDLE``), access tokens required (the signing key read
as a secret), the conversations table in moto, so every request reserves and settles its caller's
quota; secrets through the extension stand-in. The baseline (``bench/baseline_relay.py``) does
the same work the way an adapter-shaped app is written: uvicorn + Starlette, the secrets through
Powertools and boto3, DynamoDB through boto3 in worker threads, the quota before the upstream call.

- First token added, warm: the upstream's first token comes 150 ms after the request (``#first``,
  a model thinking, then one every 20 ms), so what a relay adds is whatever it does not overlap
  with that wait. Direct: the client asks the HTTPS fake Zhipu itself, timed after its TLS
  handshake; every request is timed on a connection its server has accepted. Requests are 50 ms
  apart, so each finds the last one's bookkeeping done, as a Lambda container does.
- Cold start: a new container's first request (one-chunk answer), under the Runtime Interface
  Emulator and at the Runtime API stand-in, as in ``bench/cold_runs.py``; the baseline spawned
  fresh and timed to its first content.

    python -m bench --only deployed [--quick]
"""

from __future__ import annotations

import sys

from bench.cold_runs import api_cold_run, baseline_cold_run, rie_cold
from bench.common import Backends, Child, Figure, median, python_env
from bench.lambda_site import LambdaSite
from bench.timing import interleaved, relay_request, stream, upstream_request

# The upstream's first token comes 150 ms after the request, the next ones every 20 ms (a model
# writing 50 tokens a second). Sent back to back instead, the rest of the answer would keep the
# fake Zhipu busy on one of this machine's two cores just as the relay wakes for the first token,
# and the relay's answer needs a second core for itself and a third for the client: three
# machines in a deployment, squeezed onto two cores here.
FIRST_TOKEN = "first token #chunks=3 #first=150 #delay=20"
# Between requests: an answer's bookkeeping (the quota's settlement, a DynamoDB call) runs after
# its last event, and a Lambda container takes its next invocation only once that is done; on
# two shared cores it would otherwise compete with the next request (and moto with both).
SETTLE_S = 0.05
# Each request goes on a connection its server has accepted, as an invocation reaches a Lambda
# function on the Runtime API connection it already holds: the local function URL accepts a new
# connection per request, which a function URL's own front end would have done, not the function.
ACCEPT_WAIT_S = 0.005
RELAY_END = b"event: done"
UPSTREAM_END = b"data: [DONE]"


def _start(backends: Backends, module: str, secrets: str, ready: str) -> Child:
    return Child(
        [sys.executable, "-m", module, "--port", "0"],
        python_env(backends.relay_env(secrets, deployed=True)),
        ready_prefix=ready,
    )


def relay_port(child: Child) -> int:
    """The port a relay listens on, from its ready line: the baseline prints the number, the local
    function URL the whole URL."""
    line = child.ready_line
    return int(line) if line.isdigit() else int(line.rstrip("/").rpartition(":")[2])


def warm_first_token(backends: Backends, requests: int) -> Figure:
    ours = _start(backends, "devtools.local_url", "extension", "function URL listening on ")
    baseline = _start(backends, "bench.baseline_relay", "sdk", "baseline relay ready port=")
    host, port = backends.tls_upstream_address
    base_path = backends.tls_base_path
    tls = backends.ca.client_context()

    def direct() -> float:
        request = upstream_request(host, port, base_path, FIRST_TOKEN)
        timing = stream(
            (host, port), request, end_marker=UPSTREAM_END, tls=tls, accept_wait_s=ACCEPT_WAIT_S
        )
        return timing.first_content_ms

    def relay(child: Child) -> float:
        listening = relay_port(child)
        request = relay_request("127.0.0.1", listening, FIRST_TOKEN, backends.token)
        timing = stream(
            ("127.0.0.1", listening), request, end_marker=RELAY_END, accept_wait_s=ACCEPT_WAIT_S
        )
        return timing.first_content_ms

    ways = {"direct": direct, "ours": lambda: relay(ours), "baseline": lambda: relay(baseline)}
    try:
        seen = interleaved(ways, requests, pause=SETTLE_S)
    except Exception:
        print("ours:\n" + ours.output(), file=sys.stderr)
        print("baseline:\n" + baseline.output(), file=sys.stderr)
        raise
    finally:
        ours.stop()
        baseline.stop()
    direct_ms = median(seen["direct"])
    ours_ms, baseline_ms = median(seen["ours"]) - direct_ms, median(seen["baseline"]) - direct_ms
    return Figure(
        key="deployed_first_token_added_warm",
        name="deployed: first token added, warm",
        unit="ms",
        ours=ours_ms,
        baseline=baseline_ms,
        target="< 2 ms",
        met=ours_ms < 2.0,
        note=(
            f"direct {direct_ms:.1f} ms (HTTPS, upstream's first token at 150 ms); quota reserved "
            "and settled in moto on every request"
        ),
        runs=requests,
        detail=seen,
    )


def cold_start(backends: Backends, runs: int) -> list[Figure]:
    detail: dict[str, list[float]] = {"ours_rie": [], "ours_runtime_api": [], "baseline": []}
    with LambdaSite(compiled=True) as site, LambdaSite(baseline=True) as baseline_site:
        for _ in range(runs):  # interleaved, so a load change falls on both sides alike
            detail["ours_rie"].append(rie_cold(backends, site, "extension", deployed=True))
            detail["baseline"].append(
                baseline_cold_run(backends, baseline_site, "sdk", deployed=True).ms
            )
            detail["ours_runtime_api"].append(
                api_cold_run(backends, site, "extension", deployed=True).ms
            )
    ours, base = median(detail["ours_rie"]), median(detail["baseline"])
    return [
        Figure(
            key="deployed_cold_start",
            name="deployed: cold start, first token",
            unit="ms",
            ours=ours,
            baseline=base,
            target="<= 50% of baseline",
            met=ours <= base / 2,
            note=(
                f"ours under the emulator (whole 1-chunk answer; {ours / base:.0%} of the "
                "baseline): two secrets, the quota's first DynamoDB call, TLS to the upstream"
            ),
            runs=runs,
            detail=detail,
        ),
        Figure(
            key="deployed_cold_start_runtime_api",
            name="deployed: cold start, spawn to first token (Runtime API)",
            unit="ms",
            ours=median(detail["ours_runtime_api"]),
            baseline=base,
            note="exact first-token time at the Runtime API stand-in",
            runs=runs,
        ),
    ]


def run(backends: Backends, *, quick: bool = False) -> list[Figure]:
    figures = [warm_first_token(backends, requests=8 if quick else 60)]
    figures.extend(cold_start(backends, runs=3 if quick else 7))
    return figures


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import main as suite

    return suite(["--only", "deployed", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
