"""The secret source that reads the Parameters and Secrets Lambda Extension, against the
stand-in (devtools/secrets_extension_standin.py) serving from moto: what it asks, what it
caches, what ``force`` does, how failures surface, and the whole relay reading its key that way."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from devtools.emulator import Emulator, parse_framed
from devtools.events import function_url_event
from devtools.secrets_extension_standin import SecretsExtensionStandIn
from devtools.stack import DevStack
from glm_relay.config import Settings
from glm_relay.errors import RelayError
from glm_relay.runtime import InvocationContext, now_ms
from glm_relay.secrets import PowertoolsSecretSource, secret_source
from glm_relay.secrets.extension import (
    EXTENSION_EXECUTABLE,
    PORT_ENV,
    ExtensionSecretSource,
    extension_available,
)
from glm_relay.web.app import WebApp
from mock_upstream.testing import running_mock_upstream

from .conftest import TOKEN


def extension_env(standin: SecretsExtensionStandIn, **extra: str) -> dict[str, str]:
    return {**standin.function_env(), **extra}


class RecordingSource:
    """A fallback that records how it was asked."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.calls: list[bool] = []

    async def fetch(self, *, force: bool = False) -> str:
        self.calls.append(force)
        return self.value


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_fetch_returns_the_secret_string_from_secrets_manager(standin, secret) -> None:
    arn, value = secret
    source = ExtensionSecretSource(arn, max_age_seconds=900, environ=extension_env(standin))

    assert await source.fetch() == value
    assert standin.requests == 1
    assert standin.fetches == 1


async def test_a_name_with_slashes_and_an_arn_are_sent_url_encoded(stack, standin) -> None:
    name = f"glm-relay/perf/a b+c=d&e-{uuid.uuid4().hex[:6]}"
    arn = stack.moto.put_secret(name, "id.with-odd-name")
    env = extension_env(standin)

    assert await ExtensionSecretSource(name, max_age_seconds=1, environ=env).fetch() == (
        "id.with-odd-name"
    )
    assert await ExtensionSecretSource(arn, max_age_seconds=1, environ=env).fetch() == (
        "id.with-odd-name"
    )


async def test_the_value_is_kept_for_max_age_then_read_again(standin, secret) -> None:
    arn, value = secret
    clock = FakeClock()
    source = ExtensionSecretSource(
        arn, max_age_seconds=60, environ=extension_env(standin), clock=clock
    )

    assert await source.fetch() == value
    clock.now += 59
    assert await source.fetch() == value
    assert source.requests == 1 and standin.requests == 1

    clock.now += 2
    assert await source.fetch() == value
    assert source.requests == 2 and standin.requests == 2
    # The extension answered the second read from its own cache.
    assert standin.fetches == 1


async def test_force_reads_through_the_fallback_since_the_extension_cache_may_be_stale(
    stack, standin, secret
) -> None:
    arn, old = secret
    new = f"rotated.{uuid.uuid4().hex}"
    fallback = RecordingSource(new)
    source = ExtensionSecretSource(
        arn, max_age_seconds=900, environ=extension_env(standin), fallback=fallback
    )
    assert await source.fetch() == old
    stack.moto.put_secret(arn, new)

    # The extension still serves the old value from its cache...
    fresh = ExtensionSecretSource(arn, max_age_seconds=900, environ=extension_env(standin))
    assert await fresh.fetch() == old
    # ...so a forced read goes to the fallback, and the new value is kept from then on.
    assert await source.fetch(force=True) == new
    assert fallback.calls == [True]
    assert await source.fetch() == new
    assert fallback.calls == [True]


async def test_force_without_a_fallback_asks_the_extension_again(standin, secret) -> None:
    arn, value = secret
    source = ExtensionSecretSource(arn, max_age_seconds=900, environ=extension_env(standin))

    assert await source.fetch() == value
    assert await source.fetch(force=True) == value
    assert source.requests == 2


async def test_the_session_token_is_sent_and_a_wrong_one_is_a_configuration_error(
    standin, secret
) -> None:
    arn, _ = secret
    env = extension_env(standin, AWS_SESSION_TOKEN="not-the-token")
    source = ExtensionSecretSource(arn, max_age_seconds=900, environ=env)

    with pytest.raises(RelayError) as caught:
        await source.fetch()

    assert caught.value.code == "configuration_error"
    assert "401" in caught.value.message
    assert standin.fetches == 0


async def test_an_unknown_secret_is_a_configuration_error_that_does_not_echo_the_body(
    standin,
) -> None:
    source = ExtensionSecretSource(
        "glm-relay/perf/no-such-secret", max_age_seconds=900, environ=extension_env(standin)
    )

    with pytest.raises(RelayError) as caught:
        await source.fetch()

    assert caught.value.code == "configuration_error"
    assert "no-such-secret" not in caught.value.message


async def test_a_missing_extension_is_an_internal_error(stack: DevStack) -> None:
    from devtools.stack import free_port

    env = {PORT_ENV: str(free_port()), "AWS_SESSION_TOKEN": TOKEN}
    source = ExtensionSecretSource("anything", max_age_seconds=900, environ=env, host="127.0.0.1")

    with pytest.raises(RelayError) as caught:
        await source.fetch()

    assert caught.value.code == "internal_error"


async def test_no_secret_id_is_a_configuration_error() -> None:
    source = ExtensionSecretSource("", max_age_seconds=900, environ={})

    with pytest.raises(RelayError) as caught:
        await source.fetch()

    assert caught.value.code == "configuration_error"


def test_the_port_comes_from_the_environment_with_the_documented_default() -> None:
    assert ExtensionSecretSource("s", max_age_seconds=1, environ={}).port == 2773
    assert ExtensionSecretSource("s", max_age_seconds=1, environ={PORT_ENV: "4321"}).port == 4321


def test_the_extension_is_detected_by_its_port_variable_or_its_executable() -> None:
    assert extension_available({PORT_ENV: "2773"}, exists=lambda path: False)
    assert extension_available({}, exists=lambda path: path == EXTENSION_EXECUTABLE)
    assert not extension_available({PORT_ENV: " "}, exists=lambda path: False)


@pytest.mark.parametrize(
    ("setting", "environ", "expected"),
    [
        ("auto", {PORT_ENV: "2773"}, ExtensionSecretSource),
        ("auto", {}, PowertoolsSecretSource),
        ("extension", {}, ExtensionSecretSource),
        ("sdk", {PORT_ENV: "2773"}, PowertoolsSecretSource),
    ],
)
def test_secrets_source_setting_picks_the_source(
    monkeypatch: pytest.MonkeyPatch, setting: str, environ: dict[str, str], expected: type
) -> None:
    monkeypatch.setattr("os.path.exists", lambda path: False)
    source = secret_source("s", source=setting, max_age_seconds=1, environ=environ)

    assert isinstance(source, expected)
    if isinstance(source, ExtensionSecretSource):
        assert isinstance(source.fallback, PowertoolsSecretSource)


def test_an_unknown_secrets_source_is_a_configuration_error() -> None:
    with pytest.raises(RelayError) as caught:
        secret_source("s", source="vault", max_age_seconds=1, environ={})

    assert caught.value.code == "configuration_error"


def test_settings_read_secrets_source_from_the_environment() -> None:
    assert Settings.from_env({}).secrets_source == "auto"
    assert Settings.from_env({"SECRETS_SOURCE": "extension"}).secrets_source == "extension"


def chat_event(question: str) -> dict[str, Any]:
    target = "/chat?" + urlencode({"q": question})
    return function_url_event("GET", target, {"accept": "text/event-stream"})


async def read_events(app: WebApp, question: str) -> list[tuple[str, dict[str, Any]]]:
    context = InvocationContext(aws_request_id=uuid.uuid4().hex, deadline_ms=now_ms() + 30_000)
    response = await app.handle(chat_event(question), context)
    assert response.status_code == 200
    raw = b"".join([frame async for frame in response.body]).decode()
    events = []
    for block in filter(None, raw.split("\n\n")):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields["event"], json.loads(fields["data"])))
    return events


async def test_the_relay_reads_its_key_through_the_extension_and_recovers_from_a_rotation(
    stack, standin, secret, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn, old_key = secret
    for name, value in standin.function_env().items():
        monkeypatch.setenv(name, value)
    with running_mock_upstream(api_key=old_key) as upstream:
        app = WebApp(
            Settings.from_env(
                {},
                zhipu_secret_id=arn,
                zhipu_base_url=upstream.base_url,
                require_access_token=False,
                secrets_source="auto",
                default_model="glm-4-flash",  # a model that does not reason: chat events only
            )
        )
        try:
            assert isinstance(app.services.credentials._source, ExtensionSecretSource)
            events = await read_events(app, "hello #chunks=3")
            assert [name for name, _ in events] == ["meta", "chat", "chat", "chat", "done"]
            assert standin.fetches == 1

            # Rotation: Secrets Manager and Zhipu change the key; the extension's cache does not
            # know yet. The upstream's 401 makes the relay read the secret again, past that cache.
            new_key = f"rotated.{uuid.uuid4().hex}"
            stack.moto.put_secret(arn, new_key)
            upstream.set_api_key(new_key)
            events = await read_events(app, "hello again #chunks=2")
            assert [name for name, _ in events] == ["meta", "chat", "chat", "done"]
            auths = [r["status"] for r in upstream.requests()]
            assert auths[-2:] == [401, 200]
        finally:
            await app.services.zhipu.aclose()


def test_the_runtime_loop_under_the_emulator_reads_the_key_through_the_extension(
    relay_env: dict[str, str], standin: SecretsExtensionStandIn
) -> None:
    env = {
        **relay_env,
        **standin.function_env(),
        "SECRETS_SOURCE": "extension",
        "_HANDLER": "glm_relay.handler.handle",
    }
    with Emulator(env=env) as emulator:
        framed = parse_framed(emulator.invoke(chat_event("hello #chunks=2")))

    assert framed.status_code == 200
    names = [line[7:] for line in framed.body.decode().splitlines() if line.startswith("event: ")]
    assert names == ["meta", "chat", "chat", "done"]
    assert standin.requests >= 1


def test_the_standin_answers_404_for_other_paths_and_400_without_a_secret_id(standin) -> None:
    headers = {"X-Aws-Parameters-Secrets-Token": TOKEN}
    with httpx.Client(base_url=standin.endpoint, trust_env=False) as client:
        assert client.get("/systemsmanager/parameters/get", headers=headers).status_code == 404
        assert client.get("/secretsmanager/get", headers=headers).status_code == 400
        assert client.get("/secretsmanager/get?secretId=x").status_code == 401
