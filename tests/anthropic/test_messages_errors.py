"""Every failure of ``/v1/messages`` in Anthropic's shape, raised by the anthropic SDK as the
matching exception, with the relay's code in the message; requests refused before the upstream
never reach it, and quotas apply as on ``/v1``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic import Anthropic

from devtools.local_url import FunctionUrlConfig, running_local_url
from devtools.stack import DevStack
from glm_relay.access import TokenLimits, mint_access_token
from glm_relay.web.app import WebApp

pytestmark = pytest.mark.usefixtures("upstream_log")
ASK = [{"role": "user", "content": "Hello"}]


def error_of(raised: pytest.ExceptionInfo[anthropic.APIStatusError]) -> dict[str, Any]:
    body = raised.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    return body["error"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"max_tokens": 10, "temprature": 0.5}, "unknown_parameter"),
        ({}, "invalid_parameter"),  # max_tokens is required, as Anthropic requires it
        ({"max_tokens": 10, "top_k": 40}, "unsupported_parameter"),
        (
            {"max_tokens": 10, "thinking": {"type": "enabled", "budget_tokens": 5}},
            "invalid_parameter",
        ),
        ({"max_tokens": 10, "model": "gpt-4o"}, "model_not_allowed"),
    ],
)
def test_bad_requests_are_invalid_request_errors_that_cost_nothing(
    stack: DevStack, sent: Callable[[], list[Any]], fields: dict[str, Any], code: str
) -> None:
    body = {"model": "glm-4-flash", "messages": ASK, **fields}
    response = httpx.post(
        stack.url + "/v1/messages",
        json=body,
        headers={"x-api-key": stack.token, "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 400
    assert response.json()["type"] == "error"
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(code + ": ")
    assert response.headers["x-should-retry"] == "false"
    assert sent() == []


def test_a_bad_token_is_an_authentication_error(stack: DevStack, sent) -> None:
    bad = Anthropic(base_url=stack.url, api_key="not-a-token", max_retries=0)
    with bad, pytest.raises(anthropic.AuthenticationError) as raised:
        bad.messages.create(model="glm-4-flash", max_tokens=10, messages=ASK)
    error = error_of(raised)
    assert error["type"] == "authentication_error"
    assert error["message"].startswith("unauthorized: ")
    assert "not-a-token" not in error["message"]
    assert sent() == []


def test_the_token_works_as_a_bearer_token_too(stack: DevStack, sent) -> None:
    with Anthropic(base_url=stack.url, auth_token=stack.token, max_retries=0) as bearer:
        message = bearer.messages.create(model="glm-4-flash", max_tokens=10, messages=ASK)
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert len(sent()) == 1


@pytest.fixture
def strict_origin_url(stack: DevStack) -> Iterator[str]:
    """The stack's function in a second container that admits pages from one origin only."""
    assert stack.app is not None
    from dataclasses import replace

    settings = replace(stack.app.settings, allowed_origins=("https://app.example",))
    with running_local_url(WebApp(settings).handle, FunctionUrlConfig()) as origin:
        yield origin


def test_a_refused_origin_is_a_permission_error(strict_origin_url: str, stack: DevStack, sent):
    headers = {"Origin": "https://elsewhere.example"}
    with (
        Anthropic(
            base_url=strict_origin_url, api_key=stack.token, max_retries=0, default_headers=headers
        ) as page,
        pytest.raises(anthropic.PermissionDeniedError) as raised,
    ):
        page.messages.create(model="glm-4-flash", max_tokens=10, messages=ASK)
    assert error_of(raised)["type"] == "permission_error"
    assert sent() == []


def test_unknown_paths_and_models_are_not_found_errors(claude: Anthropic, sent) -> None:
    with pytest.raises(anthropic.NotFoundError) as raised:
        claude.post("/v1/messages/batches", body={}, cast_to=httpx.Response)
    assert error_of(raised)["type"] == "not_found_error"
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.models.retrieve("glm-0")
    assert error_of(missing) == {
        "type": "not_found_error",
        "message": "model_not_found: the model 'glm-0' does not exist or is not allowed here",
        "param": "model",  # the relay's extras ride beside Anthropic's fields
    }
    assert sent() == []


def test_models_are_listed_in_anthropic_shape(claude: Anthropic) -> None:
    models = claude.models.list()
    ids = [model.id for model in models.data]
    assert "glm-5.1" in ids and all(model.type == "model" for model in models.data)
    assert claude.models.retrieve("glm-5.1").id == "glm-5.1"
    assert claude.models.retrieve("claude-haiku-4-5").id == "glm-4.7-flash"  # an alias


def test_upstream_rate_limit_is_a_rate_limit_error_with_retry_after(
    claude: Anthropic, stack: DevStack, sent
) -> None:
    with pytest.raises(anthropic.RateLimitError) as raised:
        claude.messages.create(
            model="glm-4-flash",
            max_tokens=10,
            messages=[{"role": "user", "content": "Busy #fault=rate_limit&retry_after=7"}],
        )
    assert error_of(raised)["type"] == "rate_limit_error"
    assert error_of(raised)["message"].startswith("rate_limited: ")
    assert raised.value.response.headers["retry-after"] == "7"
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert stack.app is not None
    assert len(sent()) == stack.app.settings.retry_attempts  # the relay retried, then gave up


def test_the_daily_quota_is_a_rate_limit_error(stack: DevStack, sent) -> None:
    token = mint_access_token(
        "messages-quota", 600, stack.access_token_secret, limits=TokenLimits(requests_per_day=1)
    )
    with Anthropic(base_url=stack.url, api_key=token, max_retries=0) as limited:
        limited.messages.create(model="glm-4-flash", max_tokens=10, messages=ASK)
        with pytest.raises(anthropic.RateLimitError) as raised:
            limited.messages.create(model="glm-4-flash", max_tokens=10, messages=ASK)
    assert error_of(raised)["message"].startswith("quota_exceeded: ")
    assert "retry-after" in raised.value.response.headers


@pytest.mark.parametrize(
    ("fault", "status", "kind", "code"),
    [
        ("server_error", 502, "api_error", "upstream_error"),
        ("unavailable", 503, "overloaded_error", "upstream_unavailable"),
    ],
)
def test_upstream_failures_are_api_and_overloaded_errors(
    claude: Anthropic, fault: str, status: int, kind: str, code: str
) -> None:
    with pytest.raises(anthropic.APIStatusError) as raised:
        claude.messages.create(
            model="glm-4-flash",
            max_tokens=10,
            messages=[{"role": "user", "content": f"Hi #fault={fault}"}],
        )
    assert raised.value.status_code == status
    assert error_of(raised)["type"] == kind
    assert error_of(raised)["message"].startswith(code + ": ")


def test_a_failure_mid_stream_is_one_error_event_and_nothing_after_it(
    stack: DevStack, client: httpx.Client
) -> None:
    body = {
        "model": "glm-4-flash",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "Tell me #fault=drop&after=3"}],
    }
    with client.stream(
        "POST", stack.url + "/v1/messages", json=body, headers={"x-api-key": stack.token}
    ) as response:
        assert response.status_code == 200
        text = response.read().decode()
    names = [line[7:] for line in text.split("\n") if line.startswith("event: ")]
    assert names[0] == "message_start"
    assert names[-1] == "error" and names.count("error") == 1
    assert "message_stop" not in names and "message_delta" not in names
    last = text.strip().split("\n\n")[-1]
    assert '"type":"api_error"' in last and "upstream_disconnected: " in last


def test_the_sdk_raises_on_a_stream_that_fails_midway(claude: Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        claude.messages.stream(
            model="glm-4-flash",
            max_tokens=100,
            messages=[{"role": "user", "content": "Tell me #fault=drop&after=3"}],
        ) as stream,
    ):
        stream.get_final_text()
    assert "upstream_disconnected" in str(raised.value)
