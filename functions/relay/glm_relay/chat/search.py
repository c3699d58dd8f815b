"""Web search: the ``web_search`` tool the relay adds when a ``/chat`` caller asks for sources,
the operator's switch (``WEB_SEARCH``, ``WEB_SEARCH_OPTIONS``) and the results' shape.

A search is paid per call, so operators can turn it off: then every way of asking (``/chat``'s
``web_search``, a ``web_search`` tool on either front end) is ``web_search_disabled``, before
any upstream call.
"""

from __future__ import annotations

from typing import Any

from glm_relay.chat.request import bad
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode

# The tool the relay adds: Zhipu's standard engine, its results returned to the caller (without
# ``search_result`` the upstream keeps the list to itself), five sources.
DEFAULT_OPTIONS: dict[str, Any] = {
    "enable": True,
    "search_engine": "search_std",
    "search_result": True,
    "count": 5,
}
# What one result holds on the ``/chat`` ``search`` event (each a string, "" when not given).
RESULT_KEYS = ("title", "link", "media", "icon", "refer", "content", "publish_date")
ON_WORDS = {"1", "true", "on", "yes"}
OFF_WORDS = {"0", "false", "off", "no", ""}


def search_tool(settings: Settings) -> dict[str, Any]:
    """The ``web_search`` tool: the defaults with the operator's options merged over them."""
    return {"type": "web_search", "web_search": {**DEFAULT_OPTIONS, **settings.web_search_options}}


def asked_for_search(value: Any, *, words: bool = False) -> bool:
    """``/chat``'s ``web_search``: a boolean, or with ``words`` (a query parameter) ``true`` /
    ``false``, ``1`` / ``0``, ``on`` / ``off``, ``yes`` / ``no``."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if words and isinstance(value, str) and value.strip().lower() in ON_WORDS | OFF_WORDS:
        return value.strip().lower() in ON_WORDS
    raise bad(ErrorCode.INVALID_PARAMETER, "web_search must be true or false", "web_search")


def with_search(fields: dict[str, Any], settings: Settings, tool_choice: Any) -> dict[str, Any]:
    """``ChatRequest`` fields (``options.read_fields``) with the relay's ``web_search`` tool
    added (``/chat``); ``tool_choice`` is the caller's."""
    refuse_if_disabled(settings)
    if tool_choice == "none":
        raise bad(
            ErrorCode.INVALID_PARAMETER, 'web_search contradicts tool_choice "none"', "web_search"
        )
    if fields.get("tool_choice_name") is not None:
        raise bad(
            ErrorCode.INVALID_PARAMETER,
            "web_search contradicts a tool_choice that names a function",
            "web_search",
        )
    tools = fields["tools"]
    if any(tool["type"] == "web_search" for tool in tools):
        raise bad(
            ErrorCode.INVALID_PARAMETER,
            "web_search: true and a web_search tool: give one of them",
            "web_search",
        )
    choice = fields.get("tool_choice") or "auto"
    return {**fields, "tools": (*tools, search_tool(settings)), "tool_choice": choice}


def check_search_tools(tools: tuple[dict[str, Any], ...], settings: Settings) -> None:
    """A caller's own ``web_search`` tool is refused when the operator turned search off."""
    if any(tool["type"] == "web_search" for tool in tools):
        refuse_if_disabled(settings)


def refuse_if_disabled(settings: Settings) -> None:
    if not settings.web_search:
        raise bad(
            ErrorCode.WEB_SEARCH_DISABLED,
            "web search is turned off on this relay (WEB_SEARCH=off)",
            "web_search",
        )


def source_list(results: list[Any]) -> list[dict[str, str]]:
    """The results as the ``search`` event carries them: the documented keys, each a string."""
    return [
        {key: str(result.get(key) or "") for key in RESULT_KEYS}
        for result in results
        if isinstance(result, dict)
    ]
