"""Runtime test fixtures: the Runtime API stand-in, real runtime processes, a frame gate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from devtools.fake_runtime_api import FakeRuntimeAPI

from .support import BOOTSTRAP, Gate, StartRuntime, runtime_env


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


@pytest.fixture
async def gate() -> AsyncIterator[Gate]:
    gate = Gate()
    server = await asyncio.start_server(gate.accept, "127.0.0.1", 0)
    gate.address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield gate
        # Server.wait_closed() waits for open connections (Python 3.12).
        gate.close_connections()
