"""A container's first request starts the upstream's set-up (token, pool) in the background."""

from __future__ import annotations

from glm_relay.config import Settings
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.web.services import Services


class Credentials:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    async def authorization(self, *, refresh: bool = False) -> str:
        self.calls += 1
        if self.fail:
            raise RelayError(ErrorCode.CONFIGURATION_ERROR, "no key")
        return "Bearer token"


async def test_the_token_and_pool_are_ready_before_the_first_request_needs_them() -> None:
    credentials = Credentials()
    services = Services.from_settings(Settings.from_env({}), credentials=credentials)  # type: ignore[arg-type]
    assert services.preparing is not None
    await services.preparing
    assert credentials.calls == 1
    assert services.zhipu._transport is not None
    await services.zhipu.aclose()


async def test_a_failed_set_up_is_left_for_the_request_to_report() -> None:
    credentials = Credentials(fail=True)
    services = Services.from_settings(Settings.from_env({}), credentials=credentials)  # type: ignore[arg-type]
    assert services.preparing is not None
    await services.preparing  # does not raise
    assert credentials.calls == 1


def test_outside_an_event_loop_nothing_is_started() -> None:
    services = Services.from_settings(Settings.from_env({}), credentials=Credentials())  # type: ignore[arg-type]
    assert services.preparing is None


async def test_the_upstream_connection_is_opened_before_the_first_request_needs_it() -> None:
    import asyncio

    accepted = asyncio.Event()

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = Settings.from_env({}, zhipu_base_url=f"http://127.0.0.1:{port}/api/paas/v4")
    credentials = Credentials(fail=True)  # the connection does not wait for the key
    services = Services.from_settings(settings, credentials=credentials)  # type: ignore[arg-type]
    assert services.preparing is not None
    await services.preparing
    await asyncio.wait_for(accepted.wait(), 2)
    await services.zhipu.aclose()
    server.close()
