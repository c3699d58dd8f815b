"""Shared fixtures: the whole stack on loopback (moto, the fake Zhipu, the local function URL),
and the same function behind a local API Gateway REST API stage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devtools.local_url import FunctionUrlConfig, running_local_url
from devtools.stack import DevStack
from glm_relay.web.app import WebApp
from tests.support.resume import Container, running_container
from tests.support.upstream import upstream_bodies


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


@pytest.fixture
def sent(stack: DevStack, client: httpx.Client, upstream_log: None) -> Callable[[], list[Any]]:
    """``sent()``: the bodies the fake upstream received since the test began."""
    return lambda: upstream_bodies(stack, client)


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


@pytest.fixture(scope="session")
def rest_api_url(stack: DevStack) -> Iterator[str]:
    """The stack's function in a second container behind a local REST API stage (payload-1.0
    events, paths under ``/api``), sharing moto and the fake Zhipu: ``<origin>/api``."""
    assert stack.app is not None
    settings = stack.app.settings
    app = WebApp(settings)
    config = FunctionUrlConfig(allowed_origins=settings.allowed_origins, rest_api_stage="api")
    with running_local_url(app.handle, config) as origin:
        yield origin + "/api"
