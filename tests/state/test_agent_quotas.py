"""An agent's large prompt against the per-user token quota, through ``/v1/messages``: the
reservation is bounded by the model's context window, a request that could never fit the daily
quota is refused before anything reaches the upstream, and one over what remains of it gets the
quota error with the figures, not a failure later: a prompt this long is sent only once the
quota said yes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devtools.agent_session import messages_request
from devtools.stack import DEV_ACCESS_TOKEN_SECRET, DevStack
from glm_relay.access import TokenLimits, mint_access_token
from tests.support.upstream import upstream_bodies

pytestmark = pytest.mark.usefixtures("upstream_log")
# glm-4.7-flash has a 200K context: no request to it can be billed more.
CONTEXT_WINDOW = 200_000
# About 380,000 characters of history: its estimate and max_tokens 32000 are over 200K tokens.
SESSION = messages_request(turns=60, result_chars=6_000)


def post(stack: DevStack, client: httpx.Client, body: dict[str, Any], token: str) -> httpx.Response:
    headers = {"x-api-key": token, "anthropic-version": "2023-06-01"}
    return client.post(f"{stack.url}/v1/messages", json=body, headers=headers, timeout=60)


def token(sub: str, tokens_per_day: int) -> str:
    limits = TokenLimits(tokens_per_day=tokens_per_day)
    return mint_access_token(sub, 600, DEV_ACCESS_TOKEN_SECRET, limits=limits)


def test_a_prompt_over_the_whole_daily_quota_never_reaches_the_upstream(
    stack: DevStack, client: httpx.Client
) -> None:
    response = post(stack, client, SESSION, token("agent-quota-whole", CONTEXT_WINDOW - 1))

    assert response.status_code == 429
    assert response.headers["retry-after"]
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["message"].startswith(
        f"quota_exceeded: this request needs up to {CONTEXT_WINDOW} tokens"
    )
    assert "more than the daily quota of 199999 tokens" in error["message"]
    assert (error["requested_tokens"], error["tokens_per_day"]) == (CONTEXT_WINDOW, 199_999)
    # Refused before the upstream request was opened, although the quota overlaps it.
    assert upstream_bodies(stack, client) == []


def test_a_prompt_over_the_remaining_quota_gets_the_quota_error_with_its_figures(
    stack: DevStack, client: httpx.Client
) -> None:
    caller = token("agent-quota-remaining", CONTEXT_WINDOW + 1_000)
    first = messages_request(turns=2, result_chars=3_000) | {"max_tokens": 200}
    answered = post(stack, client, first, caller)
    assert answered.status_code == 200
    usage = answered.json()["usage"]
    remaining = CONTEXT_WINDOW + 1_000 - usage["input_tokens"] - usage["output_tokens"]

    response = post(stack, client, SESSION, caller)

    assert response.status_code == 429
    error = response.json()["error"]
    assert error["requested_tokens"] == CONTEXT_WINDOW  # the context window bounds it
    assert error["remaining_tokens"] == remaining < CONTEXT_WINDOW
    assert error["message"].startswith(
        "quota_exceeded: the daily tokens quota is used up: this request needs up to "
        f"{CONTEXT_WINDOW} tokens, {remaining} of {CONTEXT_WINDOW + 1_000} remain"
    )
    # A prompt this long waits for the quota: only the first request reached the upstream.
    assert len(upstream_bodies(stack, client)) == 1
