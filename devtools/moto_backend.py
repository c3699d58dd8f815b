"""moto on loopback, holding the relay's secrets and table, as the stack and tests use it.

For ``make run`` moto runs in a process of its own (``python -m devtools.moto_backend``), as
DynamoDB and Secrets Manager are remote from a Lambda function: in the relay's process its request
handling would compete with the relay for the interpreter, and it could not be stopped (or
paused) on its own to play an outage. Tests keep it in their own process (a thread): there every
moto server shares one set of backends, and a test can patch them to slow DynamoDB down.

Example:
    moto = MotoBackend()
    moto.start()
    arn = moto.put_secret("glm-relay/zhipu-api-key", "id.secret")
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parent.parent
READY_PREFIX = "moto ready "
# moto accepts any credentials; these only keep botocore from looking for real ones.
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_ATOMIC_LOCK = threading.Lock()


def make_item_writes_atomic() -> None:
    """Give moto DynamoDB's guarantee that one conditional write to one item is atomic.

    moto checks a condition and writes in Python without a lock, so concurrent requests could
    both pass the check; serialising each single-item call makes it behave like the service.
    Separate calls (read, then write) still race, as they do against DynamoDB.
    """
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item"):
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "_serialised", False):
            continue

        def locked(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
            with _ATOMIC_LOCK:
                return _method(*args, **kwargs)

        locked._serialised = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, functools.wraps(method)(locked))


@dataclass
class MotoBackend:
    """A moto server holding the relay's secrets and table."""

    port: int = 0
    # A process of its own (make run); else a thread of the caller's process (tests).
    own_process: bool = False
    process: subprocess.Popen[str] | None = None
    server: Any = None

    def start(self) -> str:
        """Start the server (on ``port``, or any free one) and return its endpoint once it
        answers. A server in its own process ends with this one: it exits when its stdin closes."""
        if not self.own_process:
            self.server = serve_in_thread(self.port)
            self.port = self.server.get_host_and_port()[1]
            return self.endpoint
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.moto_backend", "--port", str(self.port)],
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *_path()])},
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        if not ready.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"moto exited before it was ready (its error is above): {ready!r}")
        self.port = int(ready.rsplit(":", 1)[1])
        return self.endpoint

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def put_secret(self, name: str, value: str) -> str:
        """Create or update a secret; returns its ARN."""
        sm = self.client("secretsmanager")
        try:
            return str(sm.create_secret(Name=name, SecretString=value)["ARN"])
        except sm.exceptions.ResourceExistsException:
            return str(sm.put_secret_value(SecretId=name, SecretString=value)["ARN"])

    def create_table(self, name: str) -> None:
        """The conversations/quotas table, shaped as in template.yaml."""
        ddb = self.client("dynamodb")
        with contextlib.suppress(ddb.exceptions.ResourceInUseException):
            create_relay_table(ddb, name)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        self.process = None


def create_relay_table(ddb: Any, name: str) -> None:
    """Create the relay's table with a boto3 DynamoDB client: keys as in template.yaml."""
    ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def serve_in_thread(port: int) -> Any:
    """A started ``ThreadedMotoServer`` on loopback, its single-item writes atomic.

    A ``port`` another process holds is refused here: the server's own thread would fail to bind
    and its ``start`` would wait for readiness for ever."""
    from moto.server import ThreadedMotoServer

    if port:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                raise SystemExit(f"moto: port {port} is in use (set MOTO_PORT): {exc}") from None
    make_item_writes_atomic()
    # One access line per AWS call would drown the relay's own request lines.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


def _path() -> list[str]:
    return [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []


def main() -> None:
    """Serve moto on loopback until stdin closes (the process that started it ended) or a
    signal comes; print ``moto ready <endpoint>`` once it accepts connections."""
    parser = argparse.ArgumentParser(description="moto for the local stack")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    host, port = serve_in_thread(args.port).get_host_and_port()
    print(f"{READY_PREFIX}http://{host}:{port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sys.stdin.read()


if __name__ == "__main__":
    main()
