"""Helpers of the runtime tests: paths, the runtime environment, the frame gate."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from devtools.fake_runtime_api import FakeRuntimeAPI

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = ROOT / "functions" / "relay" / "bootstrap"
HANDLERS = "tests.runtime.handlers"
NEXT_PATH = "/2018-06-01/runtime/invocation/next"
WAIT = 10.0  # seconds; generous for a loaded 2-core machine, never reached when things work


def runtime_env(**overrides: str) -> dict[str, str]:
    """A runtime subprocess's environment: this interpreter as ``python3``, the repo importable."""
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": str(ROOT),  # for tests.runtime.handlers; bootstrap adds the package dir
    }
    env.pop("LAMBDA_TASK_ROOT", None)
    env.pop("_X_AMZN_TRACE_ID", None)
    env.update(overrides)
    return env


StartRuntime = Callable[..., Awaitable[asyncio.subprocess.Process]]


async def wait_for_next_requests(api: FakeRuntimeAPI, count: int) -> None:
    """Until the runtime has asked /next ``count`` times (it is then idle, waiting)."""
    async with asyncio.timeout(WAIT):
        while sum(r.path == NEXT_PATH for r in api.requests) < count:
            await asyncio.sleep(0.005)


class GateConnection:
    """The ``gated`` handler's line to the test: one released frame per ``release()``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    def release(self) -> None:
        """Let the handler produce its next frame."""
        self._writer.write(b"go\n")

    async def closed(self) -> bool:
        """True once the handler's body reports it was closed."""
        async with asyncio.timeout(WAIT):
            return await self._reader.readline() == b"closed\n"


class Gate:
    """A loopback server the ``gated`` handler connects to, once per invocation."""

    def __init__(self) -> None:
        self._connections: asyncio.Queue[GateConnection] = asyncio.Queue()
        self._writers: list[asyncio.StreamWriter] = []
        self.address = ""

    async def connection(self) -> GateConnection:
        async with asyncio.timeout(WAIT):
            return await self._connections.get()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        await self._connections.put(GateConnection(reader, writer))

    def close_connections(self) -> None:
        for writer in self._writers:
            writer.close()
