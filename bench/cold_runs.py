"""One cold start, timed: a fresh function's first invocation, three ways.

Shared by the suites that measure a cold path (``bench/coldstart.py``, ``bench/deployed.py``,
``bench/wan.py``), so that each spawns and times a new container alike:

- ``rie_cold``: under the Runtime Interface Emulator, from sending the first invocation to the
  whole framed response (the emulator buffers, so first token plus the ``done`` frame);
- ``api_cold_run``: the runtime loop against the Runtime API stand-in, from spawning the bootstrap
  to the first content chunk, with the moment the invocation was handed out;
- ``baseline_cold_run``: ``bench/baseline_relay.py`` spawned fresh, from spawning it to the first
  content of its first answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict, Unpack

from bench.common import Backends, Child, chat_event, python_env, relay_request, stream
from bench.lambda_site import LambdaSite

COLD_QUESTION = "cold start #chunks=1"
HANDLER = "glm_relay.handler.handle"


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


class SpawnOptions(TypedDict, total=False):
    """How a relay started cold is configured, beside its secrets mode: one set of options for
    the function and the baseline alike, so that both spawn in the same configuration."""

    deployed: bool  # the template's configuration (``Backends.relay_env``); off by default
    extra: Mapping[str, str]  # over the relay's environment (the wan suite's proxies)


def _relay_env(backends: Backends, secrets: str, options: SpawnOptions) -> dict[str, str]:
    """The relay's environment: ``Backends.relay_env``, then ``extra`` over it."""
    return {
        **backends.relay_env(secrets, deployed=options.get("deployed", False)),
        **options.get("extra", {}),
    }


def _question_token(backends: Backends, options: SpawnOptions) -> str | None:
    """The access token the first question carries: the deployed configuration requires one."""
    return backends.token if options.get("deployed", False) else None


async def _api_cold(
    backends: Backends, site: LambdaSite, secrets: str, options: SpawnOptions
) -> ColdRun:
    from devtools.fake_runtime_api import FakeRuntimeAPI

    backends.standin.clear_cache()
    async with FakeRuntimeAPI() as api:
        invocation = api.enqueue(chat_event(COLD_QUESTION, _question_token(backends, options)))
        env = site.env(
            {
                **_relay_env(backends, secrets, options),
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
    backends: Backends, site: LambdaSite, secrets: str, **options: Unpack[SpawnOptions]
) -> ColdRun:
    """Spawning the bootstrap to the first content chunk at the Runtime API (``.ms``), with the
    moments between."""
    return asyncio.run(_api_cold(backends, site, secrets, options))


def _start_baseline(
    backends: Backends, site: LambdaSite, secrets: str, options: SpawnOptions
) -> Child:
    """The baseline relay in a fresh process, answering on a port of its own choosing (the ready
    line)."""
    return Child(
        site.python("-m", "bench.baseline_relay", "--port", "0"),
        site.env(_relay_env(backends, secrets, options), repository=True),
        ready_prefix="baseline relay ready port=",
    )


def baseline_cold_run(
    backends: Backends, site: LambdaSite, secrets: str, **options: Unpack[SpawnOptions]
) -> ColdRun:
    """Spawning the baseline server to the first content of its first answer (``.ms``), with the
    moments between."""
    backends.standin.clear_cache()
    started = time.perf_counter_ns()
    wall = time.time_ns()  # the timing client stamps with time.time_ns()
    child = _start_baseline(backends, site, secrets, options)
    invoked = time.perf_counter_ns()
    try:
        port = int(child.ready_line)
        token = _question_token(backends, options)
        timing = stream(
            ("127.0.0.1", port),
            relay_request("127.0.0.1", port, COLD_QUESTION, token),
            end_marker=b"event: done",
        )
    finally:
        child.stop()
    assert timing.first_content_ns is not None
    return ColdRun(started, invoked, started + timing.first_content_ns - wall)
