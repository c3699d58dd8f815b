"""The deployed configuration over a shaped network: Zhipu 100 ms away, AWS 2 ms away.

On loopback every round trip is free, so the cold path's connection set-up (a TCP handshake, a
TLS handshake, then the request) and the quota's DynamoDB call cost only CPU. Here they cost what
they would from a Lambda region. This kernel has no ``tc netem``, so delaying TCP proxies on
loopback (``bench/latency_proxy.py``) shape the links:

- Zhipu: the HTTPS fake Zhipu at 100 ms round trip (a region far from Zhipu's endpoint).
- DynamoDB, and Secrets Manager for the SDK: moto at 2 ms (in the function's region), behind an
  HTTPS keep-alive front (``bench/moto_keepalive.py``), since the real endpoints speak HTTPS and
  keep connections.
- The secrets extension: its stand-in reads Secrets Manager through a third proxy at 2 ms over
  plain HTTP, a new connection per read (moto closes each), as a new sandbox's extension does;
  the native extension's TLS handshake (one more 2 ms round trip) is left out, because this
  Python stand-in would spend some 20 ms of CPU setting TLS up where the real one does not.

TLS verifies as in the deployed suite: the certificates are for ``127.0.0.1``, where the proxies
listen. No DNS lookups (addresses are literal) and no bandwidth limit.

Three ways, each in the deployed configuration (access token, quota in DynamoDB):

- ours: the function as shipped (the quota overlaps the upstream request);
- ours with ``QUOTA_OVERLAP=false``: the quota decides before the upstream request is sent;
- the baseline (``bench/baseline_relay.py``: uvicorn + Starlette, SDK, boto3, the quota first).

Cold start: spawn to first token as in ``bench/coldstart.py`` (ours at the Runtime API stand-in,
the baseline spawned fresh), the three ways in rotating order. The proxies' records split it:
init (spawn to the invocation), the invocation to the opening of the upstream connection
(secrets, token check, pool), the handshakes (connection to the request) and the request to the
first token, and count the round trips: the TCP handshake plus each flight the client sent
before the answer came. Warm: the deployed suite's question and timing (a 3-chunk answer whose
first chunk the upstream sends 150 ms after the request, each request on a connection its server
has accepted), minus the same asked directly through the same proxy (a new connection each time,
its handshakes before the clock starts; the relays keep theirs).

    python -m bench --only wan [--quick]
"""

from __future__ import annotations

import contextlib
import ssl
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench.coldstart import ColdRun, api_cold_run, baseline_cold_run
from bench.common import REGION, SESSION_TOKEN, Backends, Child, Figure, median, python_env
from bench.deployed import ACCEPT_WAIT_S, FIRST_TOKEN, RELAY_END, SETTLE_S, UPSTREAM_END
from bench.lambda_site import LambdaSite
from bench.latency_proxy import TO_SERVER, Connection, LatencyProxy, running_proxy
from bench.moto_keepalive import KeepAliveProxy
from bench.timing import interleaved, relay_request, rotated, stream, upstream_request
from devtools.secrets_extension_standin import SecretsExtensionStandIn

UPSTREAM_ONE_WAY_S = 0.050  # 100 ms round trip to Zhipu
AWS_ONE_WAY_S = 0.001  # 2 ms round trip to DynamoDB and Secrets Manager
OURS, STRICT, BASELINE = "ours", "ours, QUOTA_OVERLAP=false", "baseline"
WAYS = (OURS, STRICT, BASELINE)


@dataclass
class Network:
    """The delaying proxies, the secrets extension behind one, and what a relay's environment
    needs to go through them."""

    upstream: LatencyProxy  # to the HTTPS fake Zhipu
    aws: LatencyProxy  # to moto's HTTPS keep-alive front (DynamoDB; the baseline's secrets)
    secrets: LatencyProxy  # to moto itself, for the extension stand-in
    extension: SecretsExtensionStandIn
    base_path: str
    ca_bundle: str

    def env(self, *, overlap: bool = True) -> dict[str, str]:
        """Over ``Backends.relay_env(..., deployed=True)``: every call through the proxies."""
        aws = f"https://127.0.0.1:{self.aws.port}"
        return {
            "ZHIPU_BASE_URL": f"https://127.0.0.1:{self.upstream.port}{self.base_path}",
            "AWS_ENDPOINT_URL_DYNAMODB": aws,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": aws,
            "AWS_CA_BUNDLE": self.ca_bundle,  # boto3's (the baseline's SDK calls)
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(self.extension.port),
            "QUOTA_OVERLAP": "true" if overlap else "false",
        }

    def mark(self) -> tuple[int, int, int]:
        """Where each proxy's record of connections stands now."""
        return (
            len(self.upstream.connections),
            len(self.aws.connections),
            len(self.secrets.connections),
        )


@contextlib.contextmanager
def shaped_network(backends: Backends) -> Iterator[Network]:
    """The proxies, each on a thread of its own; the extension stand-in reads Secrets Manager
    over plain HTTP through its 2 ms proxy (moto closes every connection, so each read opens a
    new one, as a new sandbox's extension does): a native extension's TLS handshake would add
    one round trip (2 ms), but this Python stand-in's TLS set-up would add 20 ms of CPU that
    the real one does not spend."""
    import boto3

    from devtools.secrets_extension_standin import running_standin

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(backends.ca.cert_chain, backends.ca.key)
    front = KeepAliveProxy(("127.0.0.1", backends.moto.port), server_context)
    front.start()
    moto = ("127.0.0.1", backends.moto.port)
    try:
        with (
            running_proxy(backends.tls_upstream_address, UPSTREAM_ONE_WAY_S) as upstream,
            running_proxy(("127.0.0.1", front.port), AWS_ONE_WAY_S) as aws,
            running_proxy(moto, AWS_ONE_WAY_S) as secrets,
        ):
            client = boto3.client(
                "secretsmanager",
                endpoint_url=f"http://127.0.0.1:{secrets.port}",
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            with running_standin(token=SESSION_TOKEN, client=client) as extension:
                base_path = "/" + backends.tls_base_url.split("//", 1)[1].split("/", 1)[1]
                yield Network(upstream, aws, secrets, extension, base_path, str(backends.ca.bundle))
    finally:
        front.stop()


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


def _port(child: Child) -> int:
    line = child.ready_line
    return int(line) if line.isdigit() else int(line.rstrip("/").rpartition(":")[2])


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
            port = _port(child)
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


# --- figures ----------------------------------------------------------------------------------


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
