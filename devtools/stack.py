"""The whole relay on loopback: moto (Secrets Manager, DynamoDB), the fake Zhipu, the function URL.

``make run`` runs this module; tests and benchmarks use ``DevStack`` so that what they exercise
is what a developer runs. ``make run`` behaves as the deployed function does: moto and the fake
Zhipu run in processes of their own (remote services), answers are recorded for resuming, and an
answer runs on to its end when its client leaves, as on Lambda (``KEEP_RUNNING=false`` closes it
at once instead). ``DevStack``'s defaults suit tests: moto in the test's process (patchable) and
an answer closed when its client leaves (no test's answer runs on into the next). Environment
overrides (docs/local-stack.md):
``PORT`` (3000), ``MOCK_PORT`` (8787), ``MOTO_PORT`` (5005), ``ZHIPU_API_KEY``
(``devid.devsecret``; several keys separated by commas are stored as a key pool),
``ACCESS_TOKEN_SECRET`` (a development signing key), and
``ZHIPU_BASE_URL``: set, it is the upstream (with ``ZHIPU_API_KEY`` its key, stored in moto's
Secrets Manager as in AWS) and no fake one is started. ``FRONT_DOOR=api-gateway`` serves the
function as an API Gateway REST API stage instead of a function URL: REST proxy events (payload
1.0), everything under ``/api/``. The app's settings come from the environment too, so
``ACCESS_TOKEN_ISSUER`` and the other identity-provider variables make the local relay accept
that provider's tokens beside the development token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.local_url import FunctionUrlConfig, running_local_url, serve_forever
from devtools.moto_backend import DUMMY_AWS_ENV, MotoBackend, free_port
from glm_relay.config import Settings
from glm_relay.web.app import WebApp

ROOT = Path(__file__).resolve().parent.parent
DEV_API_KEY = "devid.devsecret"
DEV_ACCESS_TOKEN_SECRET = "dev-access-token-signing-key-not-for-production"
# FRONT_DOOR for `make run`: the REST API serves its stage "api", as template.yaml's API does.
FRONT_DOORS: dict[str, str | None] = {"function-url": None, "api-gateway": "api"}
MOCK_COMMAND = (sys.executable, "-m", "mock_upstream", "--host", "127.0.0.1")


@dataclass
class MockUpstreamProcess:
    """The fake Zhipu server in its own process, as the real one would be."""

    api_key: str
    port: int = 0
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    def start(self) -> str:
        self.port = self.port or free_port()
        env = {**os.environ, "PYTHONPATH": _pythonpath(), "ZHIPU_API_KEY": self.api_key}
        self.process = subprocess.Popen(
            [*MOCK_COMMAND, "--port", str(self.port), *self.extra_args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()  # it prints one line when it is ready
        if not ready:
            raise RuntimeError("the fake upstream exited before it was ready")
        return self.origin

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api/paas/v4"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _pythonpath() -> str:
    parts = [str(ROOT / "functions" / "relay"), str(ROOT)]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


@dataclass
class DevStack:
    """Everything ``make run`` starts, as one object.

    Example:
        with DevStack().running() as stack:
            httpx.get(stack.url + "/chat", params={"q": "Hi", "access_token": stack.token})
    """

    port: int = 0
    mock_port: int = 0
    moto_port: int = 0
    api_key: str = DEV_API_KEY
    # An upstream to use instead of starting the fake one (e.g. Zhipu itself).
    upstream_url: str = ""
    access_token_secret: str = DEV_ACCESS_TOKEN_SECRET
    require_access_token: bool = True
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    mock_args: list[str] = field(default_factory=list)
    # Set: served as that API Gateway REST API stage (``url`` ends in ``/<stage>``).
    rest_api_stage: str | None = None
    # As on Lambda, an answer whose client left runs on to its end (and its record completes).
    keep_running: bool = False
    moto: MotoBackend = field(default_factory=MotoBackend)
    upstream: MockUpstreamProcess | None = None
    app: WebApp | None = None
    url: str = ""
    token: str = ""
    names: dict[str, str] = field(default_factory=dict)
    saved_env: dict[str, str | None] = field(default_factory=dict)

    def start_backends(self) -> None:
        """moto with the secrets and table, then the fake upstream; builds the app."""
        self.moto.port = self.moto_port
        endpoint = self.moto.start()
        aws_env = {
            **DUMMY_AWS_ENV,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        }
        # Given back on stop: a stack started and stopped inside another's lifetime (a test)
        # must not leave the outer one's later clients pointing at its stopped moto.
        self.saved_env = {name: os.environ.get(name) for name in aws_env}
        os.environ.update(aws_env)
        suffix = uuid.uuid4().hex[:8]  # each stack is a new "container" with its own secret
        self.names = {
            "zhipu_secret": f"glm-relay/zhipu-api-key-{suffix}",
            "access_secret": f"glm-relay/access-token-key-{suffix}",
            "table": f"glm-relay-{suffix}",
        }
        zhipu_arn = self.moto.put_secret(self.names["zhipu_secret"], zhipu_secret(self.api_key))
        access_arn = self.moto.put_secret(self.names["access_secret"], self.access_token_secret)
        self.moto.create_table(self.names["table"])
        if not self.upstream_url:
            self.upstream = MockUpstreamProcess(self.api_key, self.mock_port, self.mock_args)
            self.upstream.start()
        overrides: dict[str, Any] = {
            "zhipu_secret_id": zhipu_arn,
            "zhipu_base_url": self.upstream_base_url,
            "access_token_secret_id": access_arn,
            "require_access_token": self.require_access_token,
            "conversations_table": self.names["table"],
            **self.settings_overrides,
        }
        self.app = WebApp(Settings.from_env(os.environ, **overrides))
        self.token = _mint_dev_token(self.access_token_secret)

    @property
    def upstream_base_url(self) -> str:
        """The Zhipu base URL the function calls."""
        if self.upstream_url:
            return self.upstream_url
        assert self.upstream is not None
        return self.upstream.base_url

    def runtime_env(self) -> dict[str, str]:
        """The environment that points the real handler, in another process (the runtime loop
        under the emulator), at this stack; moto's endpoints and dummy credentials are in
        ``os.environ`` already. Events carry no access token, so none is required."""
        assert self.app is not None
        settings = self.app.settings
        env = {
            "ZHIPU_SECRET_ID": settings.zhipu_secret_id,
            "ZHIPU_BASE_URL": settings.zhipu_base_url,
            "ACCESS_TOKEN_SECRET_ID": settings.access_token_secret_id,
            "CONVERSATIONS_TABLE": settings.conversations_table,
            "REQUIRE_ACCESS_TOKEN": "false",
        }
        if settings.default_model:
            env["DEFAULT_MODEL"] = settings.default_model
        return env

    def rotate_api_key(self, new_key: str) -> None:
        """Put a new key in Secrets Manager (the function's cache does not know yet)."""
        self.moto.put_secret(self.names["zhipu_secret"], zhipu_secret(new_key))

    @contextlib.contextmanager
    def running(self) -> Iterator[DevStack]:
        """Start everything, with the function URL served from a background thread."""
        try:
            self.start_backends()
            assert self.app is not None
            with running_local_url(self.app.handle, self.url_config(), port=self.port) as url:
                self.url = url + self.stage_path
                yield self
        finally:
            self.stop()

    def url_config(self) -> FunctionUrlConfig:
        assert self.app is not None
        origins = self.app.settings.allowed_origins
        return FunctionUrlConfig(
            allowed_origins=origins,
            keep_running=self.keep_running,
            rest_api_stage=self.rest_api_stage,
        )

    @property
    def stage_path(self) -> str:
        """What the front door puts before every path: ``/api`` for a REST API, else nothing."""
        return f"/{self.rest_api_stage}" if self.rest_api_stage else ""

    def stop(self) -> None:
        if self.upstream is not None:
            self.upstream.stop()
        self.moto.stop()
        for name, value in self.saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.saved_env = {}


def zhipu_secret(api_keys: str) -> str:
    """What the Zhipu secret holds for ``ZHIPU_API_KEY``: the key itself, or for several keys
    separated by commas the pool's JSON (``{"keys": ["id.secret", ...]}``)."""
    keys = [key.strip() for key in api_keys.split(",") if key.strip()]
    return api_keys if len(keys) < 2 else json.dumps({"keys": keys})


def _mint_dev_token(secret: str) -> str:
    """The development token: a day of local work (or a whole test run) must not use up the
    default daily quota, so it carries generous limits of its own."""
    try:
        from glm_relay.access import TokenLimits, mint_access_token
    except ImportError:  # access tokens not built into this package
        return ""
    limits = TokenLimits(requests_per_day=1_000_000, tokens_per_day=10_000_000_000)
    return mint_access_token("developer", 12 * 3600, secret, limits=limits)


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    return int(raw) if raw else default


def _announce(stack: DevStack, origin: str) -> None:
    stack.url = url = origin + stack.stage_path
    page = f"{url}/#token={stack.token}" if stack.token else f"{url}/"
    door = ("REST API" if stack.rest_api_stage else "function URL").ljust(12)
    moto = stack.moto.process
    pid = f"; process {moto.pid}" if moto is not None else ""
    print(
        "\n".join(
            [
                "glm-relay is running on loopback:",
                f"  demo page      {page}",
                f"  {door}   {url}  (GET /chat?q=..., POST /chat)",
                (
                    f"  fake Zhipu     {stack.upstream.origin}"
                    if stack.upstream
                    else f"  upstream       {stack.upstream_url}"
                ),
                f"  moto           {stack.moto.endpoint}  (DynamoDB, Secrets Manager{pid})",
                f"  table          {stack.names['table']}  (usage report: docs/local-stack.md)",
                "  answers        " + _client_gone_note(stack),
                f"  access token   {stack.token or '(not required)'}",
                "Try: curl -N '" + url + "/chat?q=Hello&access_token=" + stack.token + "'",
                "Ctrl-C stops everything.",
            ]
        ),
        flush=True,
    )


def _client_gone_note(stack: DevStack) -> str:
    if stack.keep_running:
        return "run to their end when the client leaves, as on Lambda (resume: Last-Event-ID)"
    return "stop when the client leaves (KEEP_RUNNING=false; Lambda runs them on)"


def stack_from_env(environ: Mapping[str, str]) -> DevStack:
    """The stack ``make run`` starts for this environment: the fake upstream, or the one
    ``ZHIPU_BASE_URL`` names (which then needs ``ZHIPU_API_KEY``)."""
    upstream_url = environ.get("ZHIPU_BASE_URL", "").strip().rstrip("/")
    api_key = environ.get("ZHIPU_API_KEY", "").strip()
    if upstream_url and not api_key:
        raise SystemExit("ZHIPU_BASE_URL is set: set ZHIPU_API_KEY to that upstream's key too")
    front_door = environ.get("FRONT_DOOR", "").strip().lower() or "function-url"
    if front_door not in FRONT_DOORS:
        raise SystemExit(f"FRONT_DOOR must be one of {', '.join(FRONT_DOORS)}, not {front_door!r}")
    return DevStack(
        port=_env_int(environ, "PORT", 3000),
        mock_port=_env_int(environ, "MOCK_PORT", 8787),
        moto_port=_env_int(environ, "MOTO_PORT", 5005),
        api_key=api_key or DEV_API_KEY,
        upstream_url=upstream_url,
        access_token_secret=environ.get("ACCESS_TOKEN_SECRET") or DEV_ACCESS_TOKEN_SECRET,
        require_access_token=environ.get("REQUIRE_ACCESS_TOKEN", "true").lower() != "false",
        rest_api_stage=FRONT_DOORS[front_door],
        keep_running=environ.get("KEEP_RUNNING", "true").strip().lower() != "false",
        moto=MotoBackend(own_process=True),
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """``make run``. A SIGTERM stops it as Ctrl-C does: moto and the fake Zhipu end with it."""
    stack = stack_from_env(os.environ)
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        stack.start_backends()
        print(f"backends ready in {time.monotonic() - started:.1f}s", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            assert stack.app is not None
            asyncio.run(
                serve_forever(
                    stack.app.handle,
                    stack.url_config(),
                    "127.0.0.1",
                    stack.port,
                    on_ready=lambda url: _announce(stack, url),
                )
            )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
