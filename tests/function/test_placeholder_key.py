"""The first deploy: a warm container read the placeholder the stack creates the secret with, then
the operator stores the real key. The next request after the retry interval must be answered.

The container reads its key as in Lambda, through the secrets extension (the stand-in, with the
extension's own cache), whose cache still holds the placeholder after the key is stored: the
relay's forced re-read goes past it to Secrets Manager (moto) through the SDK.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from devtools.local_url import running_local_url
from devtools.secrets_extension_standin import SecretsExtensionStandIn, running_standin
from devtools.stack import DevStack
from glm_relay.config import Settings
from glm_relay.secrets import ExtensionSecretSource
from glm_relay.upstream.credentials import BAD_KEY_RETRY_SECONDS
from glm_relay.web.app import WebApp
from tests.support.sse_client import read_stream

pytestmark = pytest.mark.usefixtures("upstream_log")
PLACEHOLDER = "REPLACE_ME"  # what template.yaml's ZhipuApiKeySecret starts with


@pytest.fixture
def standin(stack: DevStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretsExtensionStandIn]:
    with running_standin(token="testing", client=stack.moto.client("secretsmanager")) as server:
        for name, value in server.function_env().items():
            monkeypatch.setenv(name, value)
        yield server


def test_the_real_key_stored_while_warm_is_used_by_the_next_request(
    stack: DevStack, client: httpx.Client, standin: SecretsExtensionStandIn
) -> None:
    assert stack.upstream is not None
    name = f"glm-relay/first-deploy-{uuid.uuid4().hex[:8]}"
    arn = stack.moto.put_secret(name, PLACEHOLDER)
    app = WebApp(
        Settings.from_env(
            {},
            zhipu_secret_id=arn,
            zhipu_base_url=stack.upstream.base_url,
            require_access_token=False,
            secrets_source="extension",
            default_model="glm-4-flash",
        )
    )
    assert isinstance(app.services.credentials._source, ExtensionSecretSource)
    with running_local_url(app.handle) as url:
        before = client.post(f"{url}/chat", json={"messages": [{"role": "user", "content": "x"}]})
        assert before.status_code == 500
        assert before.json()["error"]["code"] == "configuration_error"

        stack.moto.put_secret(name, stack.api_key)  # aws secretsmanager put-secret-value
        time.sleep(BAD_KEY_RETRY_SECONDS + 0.05)
        after = read_stream(client, "GET", f"{url}/chat?q=Hello+after+the+key+%23chunks%3D3")

    assert after.status == 200
    assert after.names == ["meta", "chat", "chat", "chat", "done"]
    # The extension's cache still holds the placeholder: the key came past it, from the SDK.
    headers = {"X-Aws-Parameters-Secrets-Token": "testing"}
    cached = httpx.get(f"{standin.endpoint}/secretsmanager/get?secretId={arn}", headers=headers)
    assert cached.json()["SecretString"] == PLACEHOLDER
    requests = client.get(f"{stack.upstream.origin}/_mock/requests").json()["requests"]
    assert [r["status"] for r in requests] == [200]
