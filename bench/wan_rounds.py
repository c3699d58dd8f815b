"""The rounds of ``bench/wan.py``: the three ways, cold and warm, over the shaped network.

Three ways, each in the deployed configuration (access token, quota in DynamoDB):

- ours: the function as shipped (the quota overlaps the upstream request);
- ours with ``QUOTA_OVERLAP=false``: the quota decides before the upstream request is sent;
- the baseline (``bench/baseline_relay.py``: uvicorn + Starlette, SDK, boto3, the quota first).

Cold start: spawn to first token as in ``bench/cold_runs.py`` (ours at the Runtime API stand-in,
the baseline spawned fresh), the three ways in rotating order. The proxies' records split it
(``ColdSample``): init (spawn to the invocation), the invocation to the opening of the upstream
connection (secrets, token check, pool), the handshakes (connection to the request) and the
request to the first token, and count the round trips: the TCP handshake plus each flight the
client sent before the answer came. Warm: the deployed suite's question and timing (a 3-chunk
answer whose first chunk the upstream sends 150 ms after the request, each request on a
connection its server has accepted), beside the same asked directly through the same proxy (a
new connection each time, its handshakes before the clock starts; the relays keep theirs).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

from bench.cold_runs import ColdRun, api_cold_run, baseline_cold_run
from bench.common import Backends, Child, python_env
from bench.deployed import (
    ACCEPT_WAIT_S,
    FIRST_TOKEN,
    RELAY_END,
    SETTLE_S,
    UPSTREAM_END,
    relay_port,
)
from bench.lambda_site import LambdaSite
from bench.latency_proxy import TO_SERVER, Connection
from bench.shaped_network import Network
from bench.timing import interleaved, relay_request, rotated, stream, upstream_request

OURS, STRICT, BASELINE = "ours", "ours, QUOTA_OVERLAP=false", "baseline"
WAYS = (OURS, STRICT, BASELINE)


# --- cold start -------------------------------------------------------------------------------


@dataclass
class ColdSample:
    """One cold start and the connections it opened through the proxies."""

    run: ColdRun
    upstream: list[Connection]
    aws: list[Connection]  # DynamoDB, and Secrets Manager (the extension's or the SDK's)

    @property
    def connection(self) -> Connection:
        """The upstream connection that carried the request."""
        return next(c for c in self.upstream if c.data(TO_SERVER))

    @staticmethod
    def _flights(connection: Connection, before_ns: int) -> list[int]:
        """When the client's flights on ``connection`` that began before ``before_ns`` began."""
        flights = connection.flights()
        return [at for direction, at in flights if direction == TO_SERVER and at < before_ns]

    @property
    def round_trips(self) -> int:
        """Round trips to the upstream before the first token: the TCP handshake, then each
        flight the client sent (the TLS handshake, the request) before the answer came."""
        return 1 + len(self._flights(self.connection, self.run.first_token_ns))

    @property
    def aws_round_trips(self) -> int:
        """Round trips to AWS that began before the upstream connection was opened, which the
        overlap cannot hide: each connection's TCP handshake and its client's flights."""
        before = [self._flights(c, self.connection.accepted_ns) for c in self.aws]
        return sum(1 + len(flights) for flights in before if flights)

    def phases_ms(self) -> dict[str, float]:
        run, connected = self.run, self.connection.accepted_ns
        request = self._flights(self.connection, run.first_token_ns)[-1]  # the last one
        return {
            "first_token": run.ms,
            "spawn_to_invocation": (run.invoked_ns - run.spawned_ns) / 1e6,
            "invocation_to_first_token": (run.first_token_ns - run.invoked_ns) / 1e6,
            "invocation_to_connection": (connected - run.invoked_ns) / 1e6,
            "spawn_to_connection": (connected - run.spawned_ns) / 1e6,
            "connection_to_request": (request - connected) / 1e6,
            "request_to_first_token": (run.first_token_ns - request) / 1e6,
        }


def cold_starts(backends: Backends, network: Network, runs: int) -> dict[str, list[ColdSample]]:
    """``runs`` cold starts per way, the ways in rotating order so that each takes every place in
    turn; the extension's cache is emptied before each, as a new sandbox's is."""
    samples: dict[str, list[ColdSample]] = {name: [] for name in WAYS}
    with LambdaSite(compiled=True) as site, LambdaSite(baseline=True) as baseline_site:
        for index in range(runs):
            for name in rotated(list(WAYS), index):
                network.extension.clear_cache()
                upstream, aws, secrets = network.mark()
                extra = network.env(overlap=name != STRICT)
                if name == BASELINE:
                    run = baseline_cold_run(
                        backends, baseline_site, "sdk", deployed=True, extra=extra
                    )
                else:
                    run = api_cold_run(backends, site, "extension", deployed=True, extra=extra)
                samples[name].append(
                    ColdSample(
                        run,
                        network.upstream.connections[upstream:],
                        network.aws.connections[aws:] + network.secrets.connections[secrets:],
                    )
                )
    return samples


# --- warm -------------------------------------------------------------------------------------


def warm_first_tokens(
    backends: Backends, network: Network, requests: int
) -> dict[str, list[float]]:
    """Milliseconds to the first token per way (and ``direct``), ``requests`` rotated rounds."""
    tls = backends.ca.client_context()
    proxy = ("127.0.0.1", network.upstream.port)

    def direct() -> float:
        request = upstream_request(*proxy, network.base_path, FIRST_TOKEN)
        return stream(proxy, request, end_marker=UPSTREAM_END, tls=tls).first_content_ms

    def relay(child: Child) -> Callable[[], float]:
        def ask() -> float:
            port = relay_port(child)
            request = relay_request("127.0.0.1", port, FIRST_TOKEN, backends.token)
            timing = stream(
                ("127.0.0.1", port), request, end_marker=RELAY_END, accept_wait_s=ACCEPT_WAIT_S
            )
            return timing.first_content_ms

        return ask

    started: list[Child] = []
    with contextlib.ExitStack() as children:

        def start(module: str, secrets: str, ready: str, overlap: bool = True) -> Child:
            env = {**backends.relay_env(secrets, deployed=True), **network.env(overlap=overlap)}
            child = Child(
                [sys.executable, "-m", module, "--port", "0"], python_env(env), ready_prefix=ready
            )
            children.callback(child.stop)
            started.append(child)
            return child

        local_url = ("devtools.local_url", "extension", "function URL listening on ")
        ways: dict[str, Callable[[], float]] = {
            "direct": direct,
            OURS: relay(start(*local_url)),
            STRICT: relay(start(*local_url, overlap=False)),
            BASELINE: relay(start("bench.baseline_relay", "sdk", "baseline relay ready port=")),
        }
        try:
            return interleaved(ways, requests, pause=SETTLE_S)
        except Exception:
            for child in started:
                print(f"{child.process.args!r}:\n{child.output()}", file=sys.stderr)
            raise
