"""What the benchmarks share: figures, statistics, the backends, processes and a timing client.

The backends live in the benchmark's own process: moto (Secrets Manager) and the Parameters and
Secrets extension stand-in, both on background threads that sit idle once the secret was read;
the fake Zhipu runs in its own process. Relays under test run in their own processes too, so the
client that times them never shares an interpreter (or a GIL) with them.

The timing client is a plain blocking socket: it stamps each ``recv`` with ``time.time_ns()`` the
moment it returns, which is what "the chunk arrived" means, with no HTTP library in between.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import socket
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
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "functions" / "relay"
BOOTSTRAP = PACKAGE_DIR / "bootstrap"
API_KEY = "benchid.0123456789abcdef0123456789abcdef"
SESSION_TOKEN = "bench-session-token"
REGION = "us-east-1"
# Answers up to 5,000 chunks must not be cut by max_tokens (one token per chunk).
MAX_TOKENS_CAP = "10000"
# A model that writes more than 5,000 tokens and answers without reasoning unless asked, so every
# chunk timed is answer text.
BENCH_MODEL = "glm-4-32b-0414-128k"
STOP_TIMEOUT_S = 5.0
CONTENT = re.compile(rb'"content":"(\d*) ?')
STAMP = re.compile(rb'"content":"(\d{19}) "')


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


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in kB, from /proc."""
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm


# --- backends ---------------------------------------------------------------------------------


@dataclass
class Backends:
    """moto and the extension stand-in (threads here), the fake Zhipu (its own process)."""

    moto: Any = None
    standin: Any = None
    upstream: Child | None = None
    secret_arn: str = ""
    upstream_base_url: str = ""

    def start(self) -> None:
        from devtools.secrets_extension_standin import SecretsExtensionStandIn
        from devtools.stack import MotoBackend

        self.moto = MotoBackend()
        self.moto.start()
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

    def stop(self) -> None:
        if self.upstream is not None:
            self.upstream.stop()
        if self.standin is not None:
            self.standin.stop()
        if self.moto is not None:
            self.moto.stop()

    @property
    def upstream_address(self) -> tuple[str, int]:
        host_port = self.upstream_base_url.split("//", 1)[1].split("/", 1)[0]
        host, _, port = host_port.rpartition(":")
        return host, int(port)

    def relay_env(self, secrets: str) -> dict[str, str]:
        """The function's environment: this fake Zhipu, this secret, no access tokens.

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
        return env


@contextlib.contextmanager
def running_backends() -> Iterator[Backends]:
    backends = Backends()
    try:
        backends.start()
        yield backends
    finally:
        backends.stop()


# --- the timing client ------------------------------------------------------------------------


@dataclass
class Timing:
    """What the client saw of one streamed answer."""

    sent_ns: int = 0
    first_content_ns: int | None = None
    end_ns: int = 0
    stamps: list[tuple[int, int]] = field(default_factory=list)  # (sent by upstream, received)
    contents: int = 0
    raw_bytes: int = 0

    @property
    def latencies_ms(self) -> list[float]:
        return [(received - sent) / 1e6 for sent, received in self.stamps]

    @property
    def first_content_ms(self) -> float:
        assert self.first_content_ns is not None, "no content arrived"
        return (self.first_content_ns - self.sent_ns) / 1e6

    @property
    def total_s(self) -> float:
        return (self.end_ns - self.sent_ns) / 1e9


def relay_request(host: str, port: int, question: str) -> bytes:
    """``GET /chat?q=...`` as a browser's EventSource sends it."""
    return (
        f"GET /chat?q={quote(question)} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Accept: text/event-stream\r\nConnection: close\r\n\r\n"
    ).encode()


def upstream_request(host: str, port: int, base_path: str, question: str) -> bytes:
    """The fake Zhipu's ``chat/completions`` POST, as the relay sends it."""
    body = json.dumps(
        {
            "model": BENCH_MODEL,
            "messages": [{"role": "user", "content": question}],
            "stream": True,
            "max_tokens": int(MAX_TOKENS_CAP),
        }
    ).encode()
    return (
        f"POST {base_path}/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def stream(
    address: tuple[str, int],
    request: bytes,
    *,
    end_marker: bytes,
    stamps: bool = False,
    timeout: float = 30.0,
) -> Timing:
    """Send ``request`` on a new connection and time the answer until ``end_marker``.

    With ``stamps``, each ``#stamp`` content (the upstream's send time in epoch ns) is paired
    with the time the ``recv`` that completed it returned.
    """
    timing = Timing()
    buffer = bytearray()
    scanned = 0
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        timing.sent_ns = time.time_ns()
        sock.sendall(request)
        while True:
            data = sock.recv(262144)
            now = time.time_ns()
            if not data:
                raise RuntimeError(
                    f"connection closed before {end_marker!r}: {bytes(buffer[-300:])!r}"
                )
            buffer += data
            if timing.first_content_ns is None and b'"content":"' in buffer:
                timing.first_content_ns = now
            if stamps:
                # Only whole stamps: a match must end with the closing quote, and a stamp split
                # across two recvs is matched once the second arrives.
                for match in STAMP.finditer(buffer, scanned):
                    timing.stamps.append((int(match.group(1)), now))
                    scanned = match.end()
            start = max(0, len(buffer) - len(data) - len(end_marker))
            if buffer.find(end_marker, start) != -1:
                timing.end_ns = now
                break
    timing.raw_bytes = len(buffer)
    timing.contents = buffer.count(b'"content":"') if not stamps else len(timing.stamps)
    return timing


def wait_for_port(address: tuple[str, int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(address, timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


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


def chat_event(question: str) -> dict[str, Any]:
    """The payload-2.0 event a function URL sends for ``GET /chat?q=...`` from a browser."""
    query = f"q={quote(question)}"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/chat",
        "rawQueryString": query,
        "headers": {"accept": "text/event-stream", "host": "bench.lambda-url.local"},
        "requestContext": {
            "http": {"method": "GET", "path": "/chat", "sourceIp": "127.0.0.1"},
            "requestId": str(uuid.uuid4()),
        },
        "isBase64Encoded": False,
    }
