"""The relay's model catalogue agrees with the fake upstream's (both follow the published
limits), and allow-listing, defaults and output caps follow it."""

from __future__ import annotations

import pytest

from glm_relay.chat.models import CATALOGUE, allowed_models, allowed_spec, default_model
from glm_relay.chat.options import max_tokens
from glm_relay.chat.tools import ToolCalls
from glm_relay.config import Settings
from glm_relay.errors import RelayError
from mock_upstream.catalogue import CATALOGUE as MOCK_CATALOGUE

THINKING = {"none": "optional", "default_on": "default_on", "always": "always"}


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_each_model_matches_the_upstream_s_limits(name: str) -> None:
    ours, theirs = CATALOGUE[name], MOCK_CATALOGUE[name]

    assert (ours.context_window, ours.max_output, ours.vision) == (
        theirs.context,
        theirs.max_output,
        theirs.vision,
    )
    assert THINKING[ours.thinking] == theirs.thinking
    assert set(ours.reasoning_efforts) == set(theirs.reasoning_efforts)
    assert ours.tool_stream == theirs.tool_stream
    assert ours.call_reasoning == theirs.needs_call_reasoning


def test_defaults_come_from_the_catalogue() -> None:
    settings = Settings.from_env({})

    assert allowed_models(settings) == tuple(CATALOGUE)
    assert default_model(settings) == "glm-4.7-flash" and CATALOGUE["glm-4.7-flash"].free
    assert max_tokens({}, ("max_tokens",), CATALOGUE["glm-5.3"], settings) == 8192
    assert (
        max_tokens({"max_tokens": 131072}, ("max_tokens",), CATALOGUE["glm-5.3"], settings)
        == 131072
    )


def test_an_operator_allow_list_admits_unknown_names_with_conservative_limits() -> None:
    settings = Settings.from_env({"ALLOWED_MODELS": "glm-6, glm-4.7", "MAX_TOKENS_CAP": "2000"})

    spec = allowed_spec(settings, "glm-6")
    assert spec is not None and not spec.listed
    assert (spec.context_window, spec.max_output, spec.thinking) == (128_000, 32_768, "passthrough")
    assert allowed_spec(settings, "glm-5.3") is None
    assert max_tokens({}, ("max_tokens",), CATALOGUE["glm-4.7"], settings) == 2000
    with pytest.raises(RelayError, match="relay's ceiling"):
        max_tokens({"max_tokens": 2001}, ("max_tokens",), CATALOGUE["glm-4.7"], settings)


def test_tool_calls_assemble_from_every_shape() -> None:
    calls = ToolCalls()
    steps = [
        calls.add({"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}}),
        calls.add({"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x"'}}),
        calls.add(
            {
                "index": 1,
                "id": "b",
                "type": "function",
                "function": {"name": "g", "arguments": "{}"},
            }
        ),
        calls.add({"index": 0, "function": {"arguments": ": 1}"}}),
        calls.add({"id": "c", "function": {"name": "h"}}),  # no index: a new call
        calls.add({"function": {"arguments": "[]"}}),  # no index, no id: more of the last
    ]

    assert [(s.index, s.id, s.name, s.first) for s in steps] == [
        (0, "a", "f", True),
        (0, None, None, False),
        (1, "b", "g", True),
        (0, None, None, False),
        (2, "c", "h", True),
        (2, None, None, False),
    ]
    assert [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls.calls()
    ] == [
        ("a", "f", '{"x": 1}'),
        ("b", "g", "{}"),
        ("c", "h", "[]"),
    ]
