"""How the key is stored and sent: plain or JSON in Secrets Manager; a signed JWT or the raw key."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from devtools.local_url import running_local_url
from devtools.stack import DevStack
from glm_relay.config import Settings
from glm_relay.web.app import WebApp
from tests.support.sse_client import read_stream

pytestmark = pytest.mark.usefixtures("upstream_log")


def relay_for(stack: DevStack, secret_value: str, **settings: object) -> WebApp:
    """A fresh container reading its key from a new secret holding ``secret_value``."""
    assert stack.upstream is not None
    arn = stack.moto.put_secret(f"glm-relay/key-{uuid.uuid4().hex[:8]}", secret_value)
    return WebApp(
        Settings.from_env(
            {},
            zhipu_secret_id=arn,
            zhipu_base_url=stack.upstream.base_url,
            require_access_token=False,
            secrets_source="sdk",
            **settings,
        )
    )


@pytest.fixture
def last_upstream_request(stack: DevStack, client: httpx.Client) -> Iterator[object]:
    def fetch() -> dict:
        assert stack.upstream is not None
        return client.get(f"{stack.upstream.origin}/_mock/requests").json()["requests"][-1]

    yield fetch


def test_a_key_stored_as_json_is_read_and_signed(stack, client, last_upstream_request) -> None:
    app = relay_for(stack, json.dumps({"api_key": stack.api_key}))
    with running_local_url(app.handle) as url:
        result = read_stream(client, "GET", f"{url}/chat?q=json+key")

    assert result.terminal.event == "done"
    record = last_upstream_request()
    assert record["jwt_claims"]["api_key"] == stack.api_key.split(".")[0]


def test_raw_mode_sends_the_key_itself_as_the_bearer(stack, client, last_upstream_request) -> None:
    app = relay_for(stack, stack.api_key, zhipu_auth_mode="raw")
    with running_local_url(app.handle) as url:
        result = read_stream(client, "GET", f"{url}/chat?q=raw+key")

    assert result.terminal.event == "done"
    assert last_upstream_request()["authorization"] == f"Bearer {stack.api_key}"


def test_a_malformed_stored_key_is_a_configuration_error_that_does_not_echo_it(
    stack, client
) -> None:
    app = relay_for(stack, "REPLACE_ME")
    with running_local_url(app.handle) as url:
        response = client.post(f"{url}/chat", json={"messages": [{"role": "user", "content": "x"}]})

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "configuration_error"
    assert "REPLACE_ME" not in response.text
