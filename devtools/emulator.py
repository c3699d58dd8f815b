"""Run the function under the Lambda Runtime Interface Emulator, without Docker.

The aws-sam-cli wheel ships the emulator binary (``samcli/local/rapid/aws-lambda-rie-<arch>``).
It plays the Lambda service: it starts ``functions/relay/bootstrap`` as the runtime (on the first
invocation), serves it the real Runtime API, and answers an invoke with the runtime's whole
streamed response: prelude JSON, 8 NUL bytes, body. It buffers, so it checks framing, not timing.

CLI (``make invoke EVENT=...``):
    python -m devtools.emulator --event events/get-chat.json [--event more.json] [--env K=V]

Python:
    with Emulator(env={"_HANDLER": "glm_relay.handler.handle"}) as emulator:
        framed = parse_framed(emulator.invoke(Path("events/get-chat.json")))
        framed.prelude["statusCode"], framed.body
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = ROOT / "functions" / "relay" / "bootstrap"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
# The function URL's delimiter between the prelude JSON and the body.
PRELUDE_DELIMITER = b"\x00" * 8
VISIBLE_DELIMITER = b"\\0" * 8
RIE_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}
LOOPBACK = "127.0.0.1"


class EmulatorError(RuntimeError):
    """The emulator did not start, or an invocation did not produce a response."""


@dataclass(frozen=True, slots=True)
class FramedResponse:
    """A function-URL stream split at its delimiter."""

    prelude: dict[str, Any]
    body: bytes

    @property
    def status_code(self) -> int:
        return int(self.prelude["statusCode"])

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.prelude.get("headers") or {})

    @property
    def cookies(self) -> list[str]:
        return list(self.prelude.get("cookies") or [])


def parse_framed(raw: bytes) -> FramedResponse:
    """Split ``raw`` into the prelude (a JSON object) and the body after the 8 NUL bytes.

    Raises:
        ValueError: no delimiter, or the prelude is not a JSON object.

    Example:
        parse_framed(b'{"statusCode":200}' + b"\\0" * 8 + b"hi").body == b"hi"
    """
    prelude, found, body = raw.partition(PRELUDE_DELIMITER)
    if not found:
        raise ValueError(f"no 8-NUL delimiter in the response: {raw[:200]!r}")
    decoded = json.loads(prelude)
    if not isinstance(decoded, dict):
        raise ValueError(f"prelude is not a JSON object: {prelude[:200]!r}")
    return FramedResponse(decoded, body)


def rie_binary() -> Path:
    """The emulator binary inside the installed aws-sam-cli, for this machine's architecture."""
    spec = importlib.util.find_spec("samcli")
    if spec is None or not spec.submodule_search_locations:
        raise EmulatorError("aws-sam-cli is not installed (pip install -r requirements-dev.txt)")
    arch = RIE_ARCH.get(platform.machine().lower())
    if arch is None:
        raise EmulatorError(f"no emulator binary for machine type {platform.machine()!r}")
    binary = Path(spec.submodule_search_locations[0]) / "local" / "rapid" / f"aws-lambda-rie-{arch}"
    if not binary.is_file():
        raise EmulatorError(f"emulator binary missing: {binary}")
    return binary


class Emulator:
    """One emulator process, hence one runtime process, serving any number of invocations.

    The runtime inherits ``os.environ`` plus ``env``; ``python3`` resolves to this interpreter, so
    the runtime sees the same installed packages. Output of both goes to a log file (``logs()``).

    Example:
        with Emulator(env={"_HANDLER": "tests.runtime.handlers.echo"}) as emulator:
            raw = emulator.invoke({"frames": ["a", "b"]})
    """

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        bootstrap: Path = BOOTSTRAP,
        startup_timeout: float = 10.0,
    ) -> None:
        self._env = dict(env or {})
        self._bootstrap = bootstrap
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.port = 0

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def invoke_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{INVOKE_PATH}"

    def start(self) -> None:
        """Start the emulator on free ports and wait until it accepts invocations."""
        self.port, api_port = _free_ports(2)
        interpreter_dir = str(Path(sys.executable).parent)
        env = {**os.environ, **self._env}
        env["PATH"] = os.pathsep.join([interpreter_dir, env.get("PATH", "")])
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives until stop()
        command = [
            str(rie_binary()),
            "--runtime-interface-emulator-address",
            f"{LOOPBACK}:{self.port}",
            "--runtime-api-address",
            f"{LOOPBACK}:{api_port}",
            # No arguments after the command: the emulator would take the last one as _HANDLER.
            str(self._bootstrap),
        ]
        self._process = subprocess.Popen(
            command,
            env=env,
            # The package directory, as /var/task is in Lambda: code that only imports because the
            # repository root happens to be the working directory fails here as it would there.
            cwd=self._bootstrap.parent,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own process group, so stop() also reaches the runtime it started.
            start_new_session=True,
        )
        self._wait_until_listening()

    def stop(self) -> None:
        """Stop the emulator and the runtime it started."""
        process, self._process = self._process, None
        if process is not None:
            # The whole group: the runtime may outlive an emulator that already exited.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def invoke(
        self, event: bytes | str | Path | Mapping[str, Any], *, timeout: float = 60.0
    ) -> bytes:
        """Invoke once and return the raw response bytes (prelude, 8 NUL bytes, body).

        ``event``: raw bytes or text, a path to a JSON file, or a mapping sent as JSON.

        Raises:
            EmulatorError: the emulator answered with an HTTP error (e.g. the runtime exited).
        """
        if isinstance(event, Path):
            payload = event.read_bytes()
        elif isinstance(event, bytes):
            payload = event
        elif isinstance(event, str):
            payload = event.encode()
        else:
            payload = json.dumps(event).encode()
        request = urllib.request.Request(self.invoke_url, data=payload, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            raise EmulatorError(
                f"invoke answered {exc.code}; emulator log:\n{self.logs()}"
            ) from exc

    def logs(self) -> str:
        """What the emulator and the runtime have printed so far."""
        if self._log is None:
            return ""
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        self._log.seek(0, os.SEEK_END)
        return text

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise EmulatorError(f"emulator exited at start; log:\n{self.logs()}")
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise EmulatorError(f"emulator not listening after {self._startup_timeout}s")


def _free_ports(count: int) -> list[int]:
    """Ports free right now (all bound at once, so they differ)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _assignment(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise SystemExit(f"--env expects NAME=VALUE, got {item!r}")
    return name, value


def render(raw: bytes) -> bytes:
    """The framed response for a terminal: the 8 NUL bytes shown as ``\\0`` on their own line."""
    prelude, found, body = raw.partition(PRELUDE_DELIMITER)
    if not found:
        return raw
    return prelude + b"\n" + VISIBLE_DELIMITER + b"\n" + body


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m devtools.emulator``: invoke each event once, print each framed response."""
    parser = argparse.ArgumentParser(prog="python -m devtools.emulator", description=main.__doc__)
    parser.add_argument(
        "--event", action="append", required=True, type=Path, help="event JSON file (repeatable)"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra runtime variable"
    )
    parser.add_argument("--raw", action="store_true", help="write the exact bytes (NULs too)")
    parser.add_argument("--logs", action="store_true", help="print emulator and runtime output")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per invocation")
    parser.add_argument(
        "--no-backends",
        action="store_true",
        help="do not start moto and the fake Zhipu (the environment points elsewhere)",
    )
    args = parser.parse_args(argv)

    env = dict(_assignment(item) for item in args.env)
    with contextlib.ExitStack() as backends:
        if not args.no_backends and "ZHIPU_SECRET_ID" not in {**os.environ, **env}:
            # Like `make run`: the secret in moto, the fake Zhipu answering.
            from devtools.stack import DevStack

            stack = DevStack(require_access_token=False)
            backends.callback(stack.stop)
            stack.start_backends()
            env = {**stack.runtime_env(), **env}
        return _invoke_all(args, env)


def _invoke_all(args: argparse.Namespace, env: dict[str, str]) -> int:
    out = sys.stdout.buffer
    status = 0
    with Emulator(env=env) as emulator:
        for event in args.event:
            try:
                raw = emulator.invoke(event, timeout=args.timeout)
            except (EmulatorError, OSError) as exc:
                print(f"{event}: {exc}", file=sys.stderr)
                return 1
            out.write(raw if args.raw else render(raw))
            if not args.raw:
                out.write(b"\n")
            out.flush()
            if PRELUDE_DELIMITER not in raw:
                print(f"{event}: response is not framed (no 8-NUL delimiter)", file=sys.stderr)
                status = 1
        if args.logs or status:
            print(emulator.logs(), file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
