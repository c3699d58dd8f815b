"""The Responses tool kinds as Zhipu function tools, and their calls mapped back and forth."""

from __future__ import annotations

import json

import pytest

from glm_relay.chat.tools import FUNCTION_NAME
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.web.responses.tools import (
    ClientTool,
    call_arguments,
    call_item,
    tool_choice,
    translate_tools,
)

WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
LONG = "a_namespace_with_a_rather_long_name_for_its_tools"


def test_namespaced_names_that_would_be_invalid_are_hashed_and_map_back():
    tools = [
        {"type": "namespace", "name": LONG, "tools": [{"type": "function", "name": "list.files"}]},
        {"type": "namespace", "name": "mcp", "tools": [{"type": "function", "name": "read"}]},
        {"type": "function", "name": "mcp__read"},  # the flattened name of the one above
    ]
    sent, names = translate_tools(tools, Settings())

    chat_names = [tool["function"]["name"] for tool in sent]
    assert all(FUNCTION_NAME.match(name) for name in chat_names)
    assert len(set(chat_names)) == 3 and chat_names[1] == "mcp__read"
    hashed = chat_names[0]
    assert names.client(hashed) == ClientTool("function", "list.files", LONG)
    item = call_item("fc_1", "c1", hashed, "{}", names)
    assert (item["name"], item["namespace"]) == ("list.files", LONG)
    assert call_arguments(item, names) == (hashed, "{}")
    assert names.client(chat_names[2]) == ClientTool("function", "mcp__read")


def test_custom_and_shell_calls_round_trip_through_function_arguments():
    tools = [{"type": "custom", "name": "apply_patch"}, {"type": "local_shell"}]
    _, names = translate_tools(tools, Settings())

    custom = call_item("ctc_1", "c1", "apply_patch", json.dumps({"input": "*** Begin"}), names)
    assert custom["type"] == "custom_tool_call" and custom["input"] == "*** Begin"
    assert call_arguments(custom, names) == ("apply_patch", '{"input": "*** Begin"}')
    not_json = call_item("ctc_2", "c2", "apply_patch", "raw text", names)
    assert not_json["input"] == "raw text"  # a model that skipped the JSON wrapper

    shell = call_item("lsh_1", "c3", "local_shell", '{"command": "ls -l"}', names)
    assert shell["action"]["command"] == ["ls -l"]
    name, arguments = call_arguments(shell, names)
    assert name == "local_shell" and json.loads(arguments) == {"command": ["ls -l"]}


def test_a_named_choice_names_the_upstream_function():
    tools = [{"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "f"}]}]
    _, names = translate_tools(tools, Settings())
    choice = {"type": "function", "name": "f", "namespace": "ns"}
    assert tool_choice(choice, names) == {"type": "function", "function": {"name": "ns__f"}}
    assert tool_choice("required", names) == "required"


@pytest.mark.parametrize(
    "tools",
    [
        [WEATHER, WEATHER],
        [{"type": "local_shell"}, {"type": "local_shell"}],
        [{"type": "custom", "name": "patch"}, {"type": "custom", "name": "patch"}],
        [
            {"type": "namespace", "name": "ns", "tools": [WEATHER]},
            {"type": "namespace", "name": "ns", "tools": [WEATHER]},
        ],
    ],
)
def test_the_same_tool_twice_is_refused_as_on_v1(tools):
    with pytest.raises(RelayError) as refused:
        translate_tools(tools, Settings())
    assert refused.value.code is ErrorCode.INVALID_PARAMETER
    assert "tools[1]" in refused.value.message and "given twice" in refused.value.message


def test_a_function_and_a_custom_tool_of_one_name_each_get_their_own_upstream_name():
    # Same name and namespace: the first hash is the same for both, so it is salted.
    tools = [
        {"type": "function", "name": "list.files"},
        {"type": "custom", "name": "list.files"},
        {"type": "function", "name": "get_weather"},
        {"type": "custom", "name": "get_weather"},
    ]
    sent, names = translate_tools(tools, Settings())

    chat_names = [tool["function"]["name"] for tool in sent]
    assert len(set(chat_names)) == 4 and chat_names[2] == "get_weather"
    kinds = [names.client(name) for name in chat_names]
    assert kinds == [
        ClientTool("function", "list.files"),
        ClientTool("custom", "list.files"),
        ClientTool("function", "get_weather"),
        ClientTool("custom", "get_weather"),
    ]


def test_a_namespace_s_description_leads_each_of_its_functions_own():
    tools = [
        {
            "type": "namespace",
            "name": "agents",
            "description": "Tools for sub-agents.",
            "tools": [
                {"type": "function", "name": "spawn", "description": "Start one."},
                {"type": "function", "name": "wait"},
            ],
        }
    ]
    sent, _ = translate_tools(tools, Settings())

    assert [tool["function"]["description"] for tool in sent] == [
        "agents: Tools for sub-agents.\nStart one.",
        "agents: Tools for sub-agents.",
    ]


def test_names_that_are_not_ascii_are_hashed_to_valid_names_and_map_back():
    tools = [
        {"type": "function", "name": "天气"},
        {"type": "namespace", "name": "工具", "tools": [{"type": "function", "name": "查询📈"}]},
    ]
    sent, names = translate_tools(tools, Settings())

    chat_names = [tool["function"]["name"] for tool in sent]
    assert all(FUNCTION_NAME.match(name) for name in chat_names)
    assert names.client(chat_names[0]) == ClientTool("function", "天气")
    assert names.client(chat_names[1]) == ClientTool("function", "查询📈", "工具")
