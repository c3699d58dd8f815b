"""Runtime test fixtures: the Runtime API stand-in, real runtime processes, a frame gate."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

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


@pytest.fixture
async def api() -> AsyncIterator[FakeRuntimeAPI]:
    async with FakeRuntimeAPI() as fake:
        yield fake


@pytest.fixture
async def start_runtime(api: FakeRuntimeAPI) -> AsyncIterator[StartRuntime]:
    """Start ``functions/relay/bootstrap`` against ``api`` with ``_HANDLER`` set; killed after."""
    processes: list[asyncio.subprocess.Process] = []

    async def start(
        handler: str, runtime_api: FakeRuntimeAPI | None = None
    ) -> asyncio.subprocess.Process:
        address = (runtime_api or api).address
        process = await asyncio.create_subprocess_exec(
            str(BOOTSTRAP),
            env=runtime_env(AWS_LAMBDA_RUNTIME_API=address, _HANDLER=handler),
            cwd=BOOTSTRAP.parent,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.returncode is None:
            process.kill()
        await process.wait()


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

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        await self._connections.put(GateConnection(reader, writer))

    def close_connections(self) -> None:
        for writer in self._writers:
            writer.close()


@pytest.fixture
async def gate() -> AsyncIterator[Gate]:
    gate = Gate()
    server = await asyncio.start_server(gate._accept, "127.0.0.1", 0)
    gate.address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield gate
        # Server.wait_closed() waits for open connections (Python 3.12).
        gate.close_connections()
