"""``make run`` against another upstream: ``ZHIPU_BASE_URL`` and ``ZHIPU_API_KEY`` replace the
fake Zhipu process (here an in-process fake on another port stands in for the real service)."""

from __future__ import annotations

import httpx
import jwt
import pytest

from devtools.stack import DEV_API_KEY, DevStack, stack_from_env
from mock_upstream.testing import running_mock_upstream

KEY = "realid.realsecret-for-tests"


def test_the_environment_chooses_the_upstream() -> None:
    chosen = stack_from_env(
        {"ZHIPU_BASE_URL": "https://open.bigmodel.cn/api/paas/v4/", "ZHIPU_API_KEY": KEY}
    )
    fake = stack_from_env({})

    assert (chosen.upstream_url, chosen.api_key) == ("https://open.bigmodel.cn/api/paas/v4", KEY)
    assert (fake.upstream_url, fake.api_key) == ("", DEV_API_KEY)
    with pytest.raises(SystemExit, match="ZHIPU_API_KEY"):
        stack_from_env({"ZHIPU_BASE_URL": "https://api.z.ai/api/paas/v4"})


def test_a_stack_with_an_upstream_url_starts_no_fake_and_uses_that_key() -> None:
    with (
        running_mock_upstream(api_key=KEY) as upstream,
        DevStack(upstream_url=upstream.base_url, api_key=KEY).running() as stack,
        httpx.Client(timeout=30) as client,
    ):
        answer = client.get(
            f"{stack.url}/chat", params={"q": "Hello #chunks=2", "access_token": stack.token}
        )
        records = upstream.requests()

    assert stack.upstream is None
    assert answer.status_code == 200 and "event: done" in answer.text
    (record,) = records
    assert record["auth"] == "jwt"
    token = record["authorization"].removeprefix("Bearer ")
    assert jwt.decode(token, KEY.split(".")[1], algorithms=["HS256"])["api_key"] == "realid"
