"""Cold-path figures: a new container's first token, the handler's import time, the secret read.

Every run uses a Lambda-shaped task root (``bench/lambda_site.py``): the function's package as
``sam build`` ships it and only its dependencies, not this virtualenv's extras.

- Cold start under the Runtime Interface Emulator: a fresh emulator starts the real bootstrap on
  its first invocation; timed from sending that invocation to the whole framed response of a
  one-chunk answer (the emulator buffers, so this is first token plus the ``done`` frame). The
  work is what a first visitor waits for: process start, imports, the secret (from moto, through
  the extension stand-in with an empty cache, or through the SDK), the JWT, the upstream request.
- The same, first token exactly: the runtime loop against the Runtime API stand-in, timed from
  spawning the bootstrap to the arrival of the first content chunk.
- Baseline: ``bench/baseline_relay.py`` (uvicorn + Starlette, SDK) spawned fresh, timed from
  spawning it to the first content of its first answer.
- Import time of ``glm_relay.handler`` (``python -X importtime``, cumulative), beside the
  baseline app module's.
- The secret read itself in a fresh process, per option (SDK, extension over raw asyncio,
  extension over ``http.client``, extension over a new httpx client): time from the first
  import the option needs to the secret string.

    python -m bench.coldstart [--quick] [--json out.json]
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

from bench.common import (
    Backends,
    Child,
    Figure,
    chat_event,
    median,
    python_env,
    relay_request,
    stream,
)
from bench.lambda_site import LambdaSite

COLD_QUESTION = "cold start #chunks=1"
HANDLER = "glm_relay.handler.handle"
IMPORT_LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)\s*$")

# One fresh interpreter per option; each prints the milliseconds from its first import to the
# secret string. glm_relay.handler is imported first, as the runtime loop has by then.
_SECRET_PRELUDE = """\
import asyncio, os, time
import glm_relay.handler
ARN = os.environ["ZHIPU_SECRET_ID"]
PORT = int(os.environ["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"])
TOKEN = os.environ["AWS_SESSION_TOKEN"]
"""
SECRET_OPTIONS = {
    "sdk": """
t = time.perf_counter()
from glm_relay.secrets.sdk import PowertoolsSecretSource
value = asyncio.run(PowertoolsSecretSource(ARN, max_age_seconds=900).fetch())
""",
    "extension": """
t = time.perf_counter()
from glm_relay.secrets.extension import ExtensionSecretSource
value = asyncio.run(ExtensionSecretSource(ARN, max_age_seconds=900, host="127.0.0.1").fetch())
""",
    "http.client": """
t = time.perf_counter()
import http.client, json, urllib.parse
def get():
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    path = "/secretsmanager/get?secretId=" + urllib.parse.quote(ARN, safe="")
    connection.request("GET", path, headers={"X-Aws-Parameters-Secrets-Token": TOKEN})
    return json.loads(connection.getresponse().read())["SecretString"]
value = asyncio.run(asyncio.to_thread(get))
""",
    "httpx": """
t = time.perf_counter()
import httpx
async def get():
    async with httpx.AsyncClient(trust_env=False) as client:
        answer = await client.get(
            f"http://127.0.0.1:{PORT}/secretsmanager/get", params={"secretId": ARN},
            headers={"X-Aws-Parameters-Secrets-Token": TOKEN},
        )
        return answer.json()["SecretString"]
value = asyncio.run(get())
""",
}
_SECRET_EPILOGUE = """
assert value.startswith("benchid."), value
print((time.perf_counter() - t) * 1000)
"""


def rie_cold(
    backends: Backends, site: LambdaSite | None, secrets: str, *, deployed: bool = False
) -> float:
    """Milliseconds from the first invocation to its whole response, in a new emulator.

    ``site``: the Lambda-shaped task root, or None for the repository's bootstrap in this
    virtualenv; ``deployed``: the template's configuration (``Backends.relay_env``)."""
    from devtools.emulator import BOOTSTRAP as REPO_BOOTSTRAP
    from devtools.emulator import Emulator, parse_framed

    backends.standin.clear_cache()
    extra = {**backends.relay_env(secrets, deployed=deployed), "_HANDLER": HANDLER}
    env = site.env(extra) if site is not None else python_env(extra)
    bootstrap = site.bootstrap if site is not None else REPO_BOOTSTRAP
    with Emulator(env=env, bootstrap=bootstrap) as emulator:
        started = time.perf_counter()
        raw = emulator.invoke(chat_event(COLD_QUESTION, backends.token if deployed else None))
        elapsed = (time.perf_counter() - started) * 1000
        framed = parse_framed(raw)
        if framed.status_code != 200 or b"event: chat" not in framed.body:
            raise RuntimeError(f"cold invocation failed: {raw[:300]!r}\n{emulator.logs()}")
    return elapsed


@dataclass(frozen=True)
class ColdRun:
    """One cold start: when the process was spawned, when it took the request (the Runtime API
    handed the invocation out; the baseline said it was ready and the request was sent) and when
    its first token arrived, on ``time.perf_counter_ns()``, to be set beside other stamps."""

    spawned_ns: int
    invoked_ns: int
    first_token_ns: int

    @property
    def ms(self) -> float:
        return (self.first_token_ns - self.spawned_ns) / 1e6


async def _api_cold(
    backends: Backends,
    site: LambdaSite,
    secrets: str,
    deployed: bool,
    extra: Mapping[str, str] | None,
) -> ColdRun:
    from devtools.fake_runtime_api import FakeRuntimeAPI

    backends.standin.clear_cache()
    async with FakeRuntimeAPI() as api:
        invocation = api.enqueue(chat_event(COLD_QUESTION, backends.token if deployed else None))
        env = site.env(
            {
                **backends.relay_env(secrets, deployed=deployed),
                **(extra or {}),
                "_HANDLER": HANDLER,
                "AWS_LAMBDA_RUNTIME_API": api.address,
            }
        )
        invoked: list[int] = []
        invocation.delivered.add_done_callback(lambda _: invoked.append(time.perf_counter_ns()))
        started = time.perf_counter_ns()
        process = await site.spawn_runtime(env)
        try:
            async with asyncio.timeout(30):
                while True:
                    chunk = await invocation.next_chunk()
                    if chunk is None:
                        raise RuntimeError(f"no content in {invocation.body[:300]!r}")
                    if b'"content":"' in chunk.data:
                        await invocation.done  # the one-chunk answer ends at once
                        return ColdRun(started, invoked[0], chunk.arrived_ns)
        finally:
            process.kill()
            await process.wait()


def api_cold_run(
    backends: Backends,
    site: LambdaSite,
    secrets: str,
    *,
    deployed: bool = False,
    extra: Mapping[str, str] | None = None,
) -> ColdRun:
    """Spawning the bootstrap to the first content chunk at the Runtime API (``.ms``), with the
    moments between; ``extra`` goes over the function's environment."""
    return asyncio.run(_api_cold(backends, site, secrets, deployed, extra))


def start_baseline(
    backends: Backends,
    site: LambdaSite,
    secrets: str,
    *,
    deployed: bool = False,
    extra: Mapping[str, str] | None = None,
) -> Child:
    return Child(
        site.python("-m", "bench.baseline_relay", "--port", "0"),
        site.env(
            {**backends.relay_env(secrets, deployed=deployed), **(extra or {})}, repository=True
        ),
        ready_prefix="baseline relay ready port=",
    )


def baseline_cold_run(
    backends: Backends,
    site: LambdaSite,
    secrets: str,
    *,
    deployed: bool = False,
    extra: Mapping[str, str] | None = None,
) -> ColdRun:
    """Spawning the baseline server to the first content of its first answer (``.ms``), with the
    moments between; ``extra`` goes over the baseline's environment."""
    backends.standin.clear_cache()
    started = time.perf_counter_ns()
    wall = time.time_ns()  # the timing client stamps with time.time_ns()
    child = start_baseline(backends, site, secrets, deployed=deployed, extra=extra)
    invoked = time.perf_counter_ns()
    try:
        port = int(child.ready_line)
        token = backends.token if deployed else None
        timing = stream(
            ("127.0.0.1", port),
            relay_request("127.0.0.1", port, COLD_QUESTION, token),
            end_marker=b"event: done",
        )
    finally:
        child.stop()
    assert timing.first_content_ns is not None
    return ColdRun(started, invoked, started + timing.first_content_ns - wall)


def import_ms(site: LambdaSite, module: str) -> float:
    """Cumulative import time of ``module`` in a fresh interpreter, from ``-X importtime``."""
    result = subprocess.run(
        site.python("-X", "importtime", "-c", f"import {module}"),
        env=site.env(repository=module.startswith("bench.")),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for line in reversed(result.stderr.splitlines()):
        match = IMPORT_LINE.match(line)
        if match and match.group(2) == module:
            return int(match.group(1)) / 1000
    raise RuntimeError(f"no import line for {module}:\n{result.stderr[-2000:]}")


def secret_read_ms(backends: Backends, site: LambdaSite, option: str) -> float:
    backends.standin.clear_cache()
    code = _SECRET_PRELUDE + SECRET_OPTIONS[option] + _SECRET_EPILOGUE
    result = subprocess.run(
        site.python("-c", code),
        env=site.env(backends.relay_env("extension")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"secret read ({option}) failed:\n{result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def run(backends: Backends, *, quick: bool = False) -> list[Figure]:
    runs = 3 if quick else 7
    extra_runs = 2 if quick else 4
    with (
        # Ours as `sam build` ships it (functions/relay/Makefile: with bytecode); the same from
        # source for comparison; the baseline as an adapter-shaped app ships (source).
        LambdaSite(compiled=True) as site,
        LambdaSite(baseline=True) as baseline_site,
        LambdaSite() as source_site,
    ):
        # Interleaved, so that a load change on the machine falls on both sides alike.
        detail: dict[str, list[float]] = {
            name: []
            for name in (
                "ours_rie_extension",
                "baseline_sdk",
                "ours_runtime_api_extension",
                "ours_rie_sdk",
                "baseline_extension",
            )
        }
        if not quick:
            detail["ours_runtime_api_source"] = []
            detail["ours_rie_dev_virtualenv"] = []
        handler: list[float] = []
        handler_source: list[float] = []
        baseline_import: list[float] = []
        options: dict[str, list[float]] = {name: [] for name in SECRET_OPTIONS}
        for index in range(runs):
            detail["ours_rie_extension"].append(rie_cold(backends, site, "extension"))
            detail["baseline_sdk"].append(baseline_cold_run(backends, baseline_site, "sdk").ms)
            detail["ours_runtime_api_extension"].append(
                api_cold_run(backends, site, "extension").ms
            )
            if index < extra_runs:
                detail["ours_rie_sdk"].append(rie_cold(backends, site, "sdk"))
                detail["baseline_extension"].append(
                    baseline_cold_run(backends, baseline_site, "extension").ms
                )
                if not quick:
                    detail["ours_runtime_api_source"].append(
                        api_cold_run(backends, source_site, "extension").ms
                    )
                    detail["ours_rie_dev_virtualenv"].append(rie_cold(backends, None, "extension"))
            handler.append(import_ms(site, "glm_relay.handler"))
            handler_source.append(import_ms(source_site, "glm_relay.handler"))
            baseline_import.append(import_ms(baseline_site, "bench.baseline_relay"))
            for name in SECRET_OPTIONS:
                options[name].append(secret_read_ms(backends, site, name))
    ours_rie, baseline = detail["ours_rie_extension"], detail["baseline_sdk"]
    cold, base = median(ours_rie), median(baseline)
    medians = {name: median(values) for name, values in detail.items()}
    note = (
        f"ours under the emulator (whole 1-chunk answer); same with the SDK "
        f"{medians['ours_rie_sdk']:.0f} ms; baseline with the extension "
        f"{medians['baseline_extension']:.0f} ms"
    )
    if "ours_rie_dev_virtualenv" in medians:
        note += f"; ours in the dev virtualenv {medians['ours_rie_dev_virtualenv']:.0f} ms"
    figures = [
        Figure(
            key="cold_start",
            name="cold start: first invocation, first token",
            unit="ms",
            ours=cold,
            baseline=base,
            target="<= 50% of baseline",
            met=cold <= base / 2,
            note=note,
            runs=runs,
            detail=detail,
        ),
        Figure(
            key="cold_start_runtime_api",
            name="cold start: spawn to first token (Runtime API)",
            unit="ms",
            ours=medians["ours_runtime_api_extension"],
            baseline=base,
            note="exact first-token time at the Runtime API stand-in"
            + (
                f"; from source (no bytecode) {medians['ours_runtime_api_source']:.0f} ms"
                if "ours_runtime_api_source" in medians
                else ""
            ),
            runs=runs,
        ),
        Figure(
            key="handler_import",
            name="import of the handler module",
            unit="ms",
            ours=median(handler),
            baseline=median(baseline_import),
            target="< 150 ms",
            met=median(handler) < 150,
            note=(
                f"-X importtime, cumulative, with bytecode as sam build ships it; from source "
                f"{median(handler_source):.0f} ms; baseline: its app module"
            ),
            runs=runs,
            detail={
                "ours": handler,
                "ours_source": handler_source,
                "baseline": baseline_import,
            },
        ),
        Figure(
            key="secret_read_cold",
            name="secret read, first in a new process",
            unit="ms",
            ours=median(options["extension"]),
            baseline=median(options["sdk"]),
            note=(
                f"ours: extension over raw asyncio; baseline: SDK (Powertools); extension over "
                f"http.client {median(options['http.client']):.1f} ms, over a new httpx client "
                f"{median(options['httpx']):.0f} ms"
            ),
            runs=runs,
            detail=options,
        ),
    ]
    return figures


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import main as suite

    return suite(["--only", "coldstart", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
