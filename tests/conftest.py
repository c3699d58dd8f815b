"""Shared fixtures: the whole stack on loopback (moto, the fake Zhipu, the local function URL)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devtools.stack import DevStack
from tests.support.resume import Container, running_container


@pytest.fixture(scope="session")
def stack() -> Iterator[DevStack]:
    """The ``make run`` stack, access tokens on, short timeouts so fault tests stay quick."""
    dev = DevStack(
        settings_overrides={
            # Most tests compare exact text: a model that does not reason unless asked keeps
            # reasoning pieces out of their answers. Tests of reasoning name their model.
            "default_model": "glm-4-flash",
            "idle_timeout_seconds": 1.5,
            "keepalive_seconds": 0.5,
            "retry_base_delay_seconds": 0.05,
            "retry_max_delay_seconds": 0.2,
        },
        mock_args=["--slow-headers-ms", "5000", "--stall-ms", "5000"],
    )
    with dev.running() as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as http:
        yield http


@pytest.fixture
def upstream_log(stack: DevStack, client: httpx.Client) -> Iterator[None]:
    """Start each test with an empty record of upstream requests."""
    assert stack.upstream is not None
    client.delete(f"{stack.upstream.origin}/_mock/requests")
    yield


@pytest.fixture(scope="session")
def relay_env(stack: DevStack) -> dict[str, str]:
    """What makes the real handler, run by the runtime loop under the emulator, use this stack."""
    return stack.runtime_env()


@pytest.fixture(scope="session")
def container(stack: DevStack) -> Iterator[Container]:
    """A second container of the function that, as on Lambda, runs an answer to its end after
    the client left (resumable-stream tests)."""
    with running_container(stack) as running:
        yield running
