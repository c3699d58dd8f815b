"""An unpaired surrogate (JSON carries one, UTF-8 cannot) in any string of a ``/v1/messages``
or ``count_tokens`` request is an ``invalid_request_error``, or is ignored where the field is
(a signature that does not open, ``cache_control``, ``citations``); never a 500.

The fuzz replaces one string (a value or a key) of a request that uses every kind of block with
text around a surrogate, and calls the app itself (bounded, fixed seed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.stack import DevStack
from glm_relay.web.app import WebApp
from tests.support.app_call import AppOnLoop, app_on_loop, post_json

pytestmark = pytest.mark.usefixtures("upstream_log")

SCHEMA = {"type": "object", "properties": {"path": {"type": "string", "description": "a file"}}}
PNG = (  # one pixel
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
# A request with a string in every place a Messages request can hold one.
RICH = {
    "model": "glm-4.6v",
    "max_tokens": 200,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "stop_sequences": ["END"],
    # The thinking blocks below do not open: with thinking on, the tool turn would be refused.
    "thinking": {"type": "disabled"},
    "metadata": {"user_id": "user-12345"},
    "tools": [{"name": "read", "description": "Read a file", "input_schema": SCHEMA}],
    "tool_choice": {"type": "tool", "name": "read"},
    "messages": [
        {"role": "system", "content": "Answer in English."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look", "citations": None},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "glmr1.not-ours"},
                {"type": "redacted_thinking", "data": "glmr1.not-ours"},
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "a"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "42"}],
                    "is_error": True,
                },
                {"type": "text", "text": "Thanks"},
            ],
        },
    ],
}
COUNT_FIELDS = {"model", "messages", "system", "tools", "tool_choice"}


def string_places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], bool]]:
    """Every string in ``value``: its path, and whether it is a key (else a value)."""
    if isinstance(value, str):
        yield path, False
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key), True
            yield from string_places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_places(item, (*path, index))


PLACES = list(string_places(RICH))


def with_text(value: Any, path: tuple[Any, ...], is_key: bool, text: str) -> Any:
    """A copy of ``value`` with the string at ``path`` (a key or a value) replaced by ``text``."""
    copy = json.loads(json.dumps(value))
    *parents, last = path
    holder = copy
    for step in parents:
        holder = holder[step]
    if is_key:
        holder[text] = holder.pop(last)
    else:
        holder[last] = text
    return copy


@pytest.fixture(scope="module")
def fuzz_app(stack: DevStack) -> Iterator[AppOnLoop]:
    yield from app_on_loop(stack)


def post(app: WebApp, loop: asyncio.AbstractEventLoop, target: str, payload: Any) -> Any:
    return post_json((app, loop), target, payload, {"anthropic-version": "2023-06-01"})


def test_the_rich_request_is_answered(fuzz_app: tuple[WebApp, asyncio.AbstractEventLoop]) -> None:
    status, body = post(*fuzz_app, "/v1/messages", RICH)
    assert status == 200, body
    assert body["stop_reason"] == "tool_use"  # the named tool is called


@pytest.mark.parametrize(
    ("path", "where"),
    [
        (("messages", 2, "content", 3, "id"), "tool_calls[0].id"),
        (("messages", 3, "content", 0, "tool_use_id"), "tool_call_id"),
        (("messages", 1, "content", 1, "source", "data"), "image_url.url"),
    ],
)
def test_a_surrogate_in_an_id_or_a_url_is_invalid_messages(
    fuzz_app: tuple[WebApp, asyncio.AbstractEventLoop], sent, path: tuple[Any, ...], where: str
) -> None:
    status, body = post(*fuzz_app, "/v1/messages", with_text(RICH, path, False, "a\udc00"))

    assert status == 400, body
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("invalid_messages: ")
    assert f"{where} holds an unpaired surrogate" in body["error"]["message"]
    assert sent() == []


@settings(
    max_examples=80,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    place=st.sampled_from(PLACES),
    before=st.text(max_size=4),
    surrogate=st.characters(categories=["Cs"]),
    count=st.booleans(),
)
def test_a_surrogate_anywhere_is_an_invalid_request_or_ignored(
    place: tuple[tuple[Any, ...], bool],
    before: str,
    surrogate: str,
    count: bool,
    fuzz_app: tuple[WebApp, asyncio.AbstractEventLoop],
) -> None:
    path, is_key = place
    payload = with_text(RICH, path, is_key, before + surrogate)
    target = "/v1/messages"
    if count:
        payload = {k: v for k, v in payload.items() if k in COUNT_FIELDS or k not in RICH}
        target += "/count_tokens"

    status, body = post(*fuzz_app, target, payload)

    assert status in (200, 400), (path, status, body)
    if status == 400:
        assert body["error"]["type"] == "invalid_request_error", body
