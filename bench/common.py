"""What the benchmarks share: figures, statistics, the backends, processes and a timing client.

The Parameters and Secrets extension stand-in lives in the benchmark's own process, on a
background thread that sits idle once the secrets were read; moto (Secrets Manager, DynamoDB) and
the fake Zhipu (over HTTP and over HTTPS) run in processes of their own. Relays under test run in
their own processes too, so the client that times them never shares an interpreter (or a GIL)
with them.

The timing client is in ``bench/timing.py``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.timing import (  # noqa: F401  (re-exported: the suites import them from here)
    API_KEY,
    BENCH_MODEL,
    MAX_TOKENS_CAP,
    Timing,
    chat_event,
    relay_request,
    stream,
    upstream_request,
)

ROOT = Path(__file__).resolve().parents[1]
# The function measured; GLM_RELAY_BENCH_PACKAGE names another copy of functions/relay (an older
# commit's, say) to measure that one against the same backends and baseline.
PACKAGE_DIR = Path(os.environ.get("GLM_RELAY_BENCH_PACKAGE") or ROOT / "functions" / "relay")
BOOTSTRAP = PACKAGE_DIR / "bootstrap"
ACCESS_SECRET = "bench-access-token-signing-key-0123456789abcdef"
BENCH_USER = "bench-user"
SESSION_TOKEN = "bench-session-token"
REGION = "us-east-1"
STOP_TIMEOUT_S = 5.0


@dataclass
class Figure:
    """One row of the table: ours beside the baseline and the target.

    ``ours`` and ``baseline`` are numbers in ``unit``; ``met`` is None for figures that only
    inform (no target).
    """

    key: str
    name: str
    unit: str
    ours: float | None
    baseline: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    runs: int = 0
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def python_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A child interpreter's environment: the function's package and the repository importable,
    this interpreter first on PATH (the bootstrap runs ``python3``)."""
    env = {**os.environ}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    parts = [str(PACKAGE_DIR), str(ROOT)]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    for name in ("LAMBDA_TASK_ROOT", "_X_AMZN_TRACE_ID", "AWS_LAMBDA_RUNTIME_API"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_mb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_mb = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_mb": memory_mb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


# --- processes --------------------------------------------------------------------------------


class Child:
    """A process that prints one ready line on stdout; the rest of its output is drained."""

    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str], *, ready_prefix: str, cwd: Path = ROOT
    ) -> None:
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.tail: deque[str] = deque(maxlen=40)
        self.ready_line = self._wait_ready(ready_prefix)
        self._drain = threading.Thread(target=self._drain_output, daemon=True)
        self._drain.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_ready(self, prefix: str) -> str:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.tail.append(line)
            if line.startswith(prefix):
                return line[len(prefix) :]
        raise RuntimeError(f"{self.process.args!r} exited before it was ready:\n" + self.output())

    def _drain_output(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.tail.append(raw.decode(errors="replace").rstrip())

    def output(self) -> str:
        return "\n".join(self.tail)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- backends ---------------------------------------------------------------------------------


@dataclass
class Backends:
    """moto (a process), the extension stand-in (a thread here), the fake Zhipu (a process) over
    HTTP and, with a test CA's certificate, over HTTPS (a second process).

    The deployed configuration (``relay_env(..., deployed=True)``) is what the template sets up:
    the HTTPS upstream, access tokens required (their key read as a secret too), and the
    conversations table (in moto), so every request is counted against its caller's quota.
    """

    moto: Any = None
    moto_process: Child | None = None
    standin: Any = None
    upstream: Child | None = None
    tls_upstream: Child | None = None
    ca: Any = None
    secret_arn: str = ""
    access_secret_arn: str = ""
    table: str = ""
    token: str = ""
    upstream_base_url: str = ""
    tls_base_url: str = ""

    def start(self) -> None:
        from devtools.secrets_extension_standin import SecretsExtensionStandIn
        from devtools.stack import MotoBackend, free_port

        # moto in a process of its own: in this one, its request handling would compete for the
        # GIL with the timing client whenever a relay calls DynamoDB.
        self.moto = MotoBackend(port=free_port())
        self.moto_process = Child(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.moto.port)],
            python_env(),
            ready_prefix=" * Running on ",
        )
        self.secret_arn = self.moto.put_secret(f"glm-relay/bench-{uuid.uuid4().hex[:8]}", API_KEY)
        # The real extension is a separate process, initialised before the function's first
        # request; so the stand-in gets its client now, and its cache can be emptied per run.
        self.standin = SecretsExtensionStandIn(
            token=SESSION_TOKEN, client=self.moto.client("secretsmanager")
        )
        self.standin.start()
        self.upstream = Child(
            [sys.executable, "-m", "mock_upstream", "--host", "127.0.0.1", "--port", "0"],
            python_env({"ZHIPU_API_KEY": API_KEY}),
            ready_prefix="mock_upstream ready base_url=",
        )
        self.upstream_base_url = self.upstream.ready_line
        self._start_deployed()

    def _start_deployed(self) -> None:
        from bench.local_ca import LocalCA
        from glm_relay.access import mint_access_token

        suffix = uuid.uuid4().hex[:8]
        self.access_secret_arn = self.moto.put_secret(
            f"glm-relay/bench-access-{suffix}", ACCESS_SECRET
        )
        self.table = f"glm-relay-bench-{suffix}"
        self.moto.create_table(self.table)
        self.token = mint_access_token(BENCH_USER, 24 * 3600, ACCESS_SECRET)
        self.ca = LocalCA()
        self.tls_upstream = Child(
            [
                *(sys.executable, "-m", "mock_upstream", "--host", "127.0.0.1", "--port", "0"),
                *("--tls-cert", str(self.ca.cert_chain), "--tls-key", str(self.ca.key)),
            ],
            python_env({"ZHIPU_API_KEY": API_KEY}),
            ready_prefix="mock_upstream ready base_url=",
        )
        self.tls_base_url = self.tls_upstream.ready_line

    def stop(self) -> None:
        if self.tls_upstream is not None:
            self.tls_upstream.stop()
        if self.ca is not None:
            self.ca.close()
        if self.upstream is not None:
            self.upstream.stop()
        if self.standin is not None:
            self.standin.stop()
        if self.moto_process is not None:
            self.moto_process.stop()

    @property
    def upstream_address(self) -> tuple[str, int]:
        return _address_of(self.upstream_base_url)

    @property
    def tls_upstream_address(self) -> tuple[str, int]:
        return _address_of(self.tls_base_url)

    @property
    def tls_base_path(self) -> str:
        """The API path under the HTTPS fake Zhipu's address, which a proxy in front keeps."""
        return "/" + self.tls_base_url.split("//", 1)[1].split("/", 1)[1]

    def relay_env(self, secrets: str, *, deployed: bool = False) -> dict[str, str]:
        """The function's environment: this fake Zhipu, this secret; no access tokens and no
        table, or with ``deployed`` the template's configuration (see the class).

        ``secrets``: ``extension`` (through the stand-in) or ``sdk`` (boto3 against moto).
        """
        env = {
            "ZHIPU_SECRET_ID": self.secret_arn,
            "ZHIPU_BASE_URL": self.upstream_base_url,
            "REQUIRE_ACCESS_TOKEN": "false",
            "MAX_TOKENS_CAP": MAX_TOKENS_CAP,
            "DEFAULT_MODEL": BENCH_MODEL,
            "ALLOWED_MODELS": BENCH_MODEL,
            "SECRETS_SOURCE": secrets,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": SESSION_TOKEN,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.moto.endpoint,
            "POWERTOOLS_SERVICE_NAME": "glm-relay-bench",
        }
        if secrets == "extension":
            env["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"] = str(self.standin.port)
        if deployed:
            env.update(
                {
                    "ZHIPU_BASE_URL": self.tls_base_url,
                    "TLS_CA_BUNDLE": str(self.ca.bundle),
                    "REQUIRE_ACCESS_TOKEN": "true",
                    "ACCESS_TOKEN_SECRET_ID": self.access_secret_arn,
                    "CONVERSATIONS_TABLE": self.table,
                    "AWS_ENDPOINT_URL_DYNAMODB": self.moto.endpoint,
                    "QUOTA_REQUESTS_PER_DAY": str(10**9),
                    "QUOTA_TOKENS_PER_DAY": str(10**12),
                }
            )
            if os.environ.get("GLM_RELAY_BENCH_PACKAGE"):
                # A package from before TLS_CA_BUNDLE existed trusts the CA through httpx's
                # own variable instead.
                env["SSL_CERT_FILE"] = str(self.ca.bundle)
        return env


def _address_of(url: str) -> tuple[str, int]:
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    return host, int(port)


@contextlib.contextmanager
def running_backends() -> Iterator[Backends]:
    backends = Backends()
    try:
        backends.start()
        yield backends
    finally:
        backends.stop()


def fmt(value: float | None, unit: str) -> str:
    """A number for the table, with a precision that suits its unit."""
    if value is None or value != value:  # None or NaN
        return "-"
    if unit == "chunks/s":
        return f"{value:,.0f} {unit}"
    if unit == "ms":
        return f"{value:.3f} ms" if abs(value) < 10 else f"{value:.0f} ms"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:g} {unit}"
