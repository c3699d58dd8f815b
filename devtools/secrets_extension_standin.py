"""A loopback stand-in for the AWS Parameters and Secrets Lambda Extension, serving from moto.

In Lambda the extension (a layer) listens on ``localhost:$PARAMETERS_SECRETS_EXTENSION_HTTP_PORT``
(default 2773) and answers ``GET /secretsmanager/get?secretId=<id>`` (optionally ``versionId`` or
``versionStage``) with the JSON of ``GetSecretValue``, provided the request carries the header
``X-Aws-Parameters-Secrets-Token: $AWS_SESSION_TOKEN``. It caches each answer for
``SECRETS_MANAGER_TTL`` seconds (default 300). This stand-in does the same on loopback, reading
Secrets Manager through boto3 at ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` (moto), so local runs, tests
and benchmarks exercise the function's extension path without AWS.

Answers: 200 with the secret JSON; 400 when ``secretId`` is missing or Secrets Manager refused
(its error code and message in the body); 401 when the token header is missing or wrong; 404 for
any other path.

CLI (prints one line ``secrets extension stand-in ready port=N`` once it listens):
    python -m devtools.secrets_extension_standin --port 0 --token "$AWS_SESSION_TOKEN"

Python:
    with running_standin(token="testing") as standin:
        env = standin.function_env()   # PARAMETERS_SECRETS_EXTENSION_HTTP_PORT, AWS_SESSION_TOKEN
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

GET_PATH = "/secretsmanager/get"
TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"
PORT_ENV = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
TTL_ENV = "SECRETS_MANAGER_TTL"
DEFAULT_TTL_SECONDS = 300.0
READY_PREFIX = "secrets extension stand-in ready port="
LOOPBACK = "127.0.0.1"


class SecretsExtensionStandIn:
    """The server and its cache; ``fetches`` counts calls that reached Secrets Manager."""

    def __init__(
        self,
        *,
        token: str,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        client: Any = None,
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        self.token = token
        self.ttl_seconds = ttl_seconds
        self._client = client
        self._cache: dict[tuple[str, str, str], tuple[float, bytes]] = {}
        self._lock = threading.Lock()
        self.fetches = 0
        self.requests = 0
        self.server = ThreadingHTTPServer((host, port), _handler_class(self))
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def function_env(self) -> dict[str, str]:
        """What a function needs to reach this stand-in as it would reach the extension."""
        return {PORT_ENV: str(self.port), "AWS_SESSION_TOKEN": self.token}

    def start(self) -> None:
        """Serve from a background thread."""
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="secrets-extension-standin", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def client(self) -> Any:
        """The Secrets Manager client (created on first use; endpoint from the environment)."""
        if self._client is None:
            import boto3

            self._client = boto3.client("secretsmanager")
        return self._client

    def answer(self, query: Mapping[str, str]) -> tuple[int, bytes]:
        """The status and JSON body for one ``/secretsmanager/get`` query."""
        secret_id = query.get("secretId", "")
        if not secret_id:
            return 400, _error_body("MissingParameter", "secretId is required")
        key = (secret_id, query.get("versionId", ""), query.get("versionStage", ""))
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.ttl_seconds:
            return 200, cached[1]
        kwargs: dict[str, str] = {"SecretId": secret_id}
        if key[1]:
            kwargs["VersionId"] = key[1]
        if key[2]:
            kwargs["VersionStage"] = key[2]
        client = self.client()
        try:
            with self._lock:
                self.fetches += 1
            value = client.get_secret_value(**kwargs)
        except Exception as exc:  # botocore ClientError, or an endpoint that is not there
            error = getattr(exc, "response", {}).get("Error", {})
            code = str(error.get("Code") or type(exc).__name__)
            return 400, _error_body(code, str(error.get("Message") or exc))
        body = json.dumps(
            {k: _jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
        ).encode()
        if self.ttl_seconds > 0:
            with self._lock:
                self._cache[key] = (now, body)
        return 200, body


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"__type": code, "message": message}).encode()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    return value


def _handler_class(standin: SecretsExtensionStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a long-lived local endpoint allows

        def do_GET(self) -> None:
            standin.requests += 1
            url = urlsplit(self.path)
            if url.path != GET_PATH:
                self._send(404, _error_body("NotFound", f"no route {url.path}"))
                return
            if self.headers.get(TOKEN_HEADER) != standin.token:
                self._send(401, _error_body("Unauthorized", f"missing or wrong {TOKEN_HEADER}"))
                return
            query = {name: values[-1] for name, values in parse_qs(url.query).items()}
            self._send(*standin.answer(query))

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: one line per request would drown the function's own output

    return Handler


@contextlib.contextmanager
def running_standin(
    *, token: str = "testing", ttl_seconds: float = DEFAULT_TTL_SECONDS, client: Any = None
) -> Iterator[SecretsExtensionStandIn]:
    """A stand-in serving from a background thread for the duration of the block."""
    standin = SecretsExtensionStandIn(token=token, ttl_seconds=ttl_seconds, client=client)
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.secrets_extension_standin", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--token",
        default=os.environ.get("AWS_SESSION_TOKEN", ""),
        help="the accepted X-Aws-Parameters-Secrets-Token (default: $AWS_SESSION_TOKEN)",
    )
    parser.add_argument(
        "--ttl",
        type=float,
        default=float(os.environ.get(TTL_ENV) or DEFAULT_TTL_SECONDS),
        help=f"cache seconds, 0 = no cache (default: ${TTL_ENV} or 300)",
    )
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("pass --token or set AWS_SESSION_TOKEN")
    standin = SecretsExtensionStandIn(
        token=args.token, ttl_seconds=args.ttl, host=args.host, port=args.port
    )
    # Build the client before saying "ready": the real extension is initialised before the
    # function's first request too.
    standin.client()
    print(READY_PREFIX + str(standin.port), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        standin.server.serve_forever()
    standin.server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
