"""The text of an answer that does not call a tool, as token pieces.

Content is assembled as: a preamble (quotes of trailing tool results, one sentence per image,
video or file of the last user message), the words, then web-search citations (` [ref_1]`);
`response_format: json_object` wraps that text as `{"answer": "<text>"}`, or, when a system
message asks for JSON matching a schema ("... this JSON schema ...:" then the schema), fills that
schema with it, as an obedient model would.
"""

from __future__ import annotations

import json
import re
from itertools import islice
from typing import Any

from mock_upstream import search, vision
from mock_upstream.prompt import split_tokens, system_instructions
from mock_upstream.tools import fill_schema
from mock_upstream.words import Lang, seed_of, word_stream

_SCHEMA_ASKED = re.compile(r"JSON schema[^\n]*:\n", re.IGNORECASE)


def _asked_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a system message asks the answer to match, if one does."""
    for content in system_instructions(body.get("messages")):
        match = _SCHEMA_ASKED.search(content)
        if match is None:
            continue
        try:
            schema, _ = json.JSONDecoder().raw_decode(content, match.end())
        except ValueError:
            continue
        if isinstance(schema, dict):
            return schema
    return None


def _tool_results(body: dict[str, Any], lang: Lang) -> str:
    """One quoting sentence per tool message that ends the history, so a test sees the result
    reached the model: `lookup returned "42".` (Chinese: `lookup 返回“42”。`)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    trailing: list[dict[str, Any]] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        trailing.append(message)
    names: dict[str, str] = {}
    for message in messages:
        if isinstance(message, dict) and isinstance(message.get("tool_calls"), list):
            for call in message["tool_calls"]:
                if isinstance(call, dict) and isinstance(call.get("function"), dict):
                    names[str(call.get("id"))] = str(call["function"].get("name"))
    out = []
    for message in reversed(trailing):
        name = names.get(str(message.get("tool_call_id")), "tool")
        result = message_text_of(message.get("content"))
        out.append(f"{name} 返回“{result}”。" if lang == "zh" else f'{name} returned "{result}". ')
    return "".join(out)


def message_text_of(content: Any) -> str:
    """A tool result as text: the string itself, else its JSON."""
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False)


def _last_user_content(body: dict[str, Any]) -> Any:
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return message.get("content")
    return None


def content_texts(
    body: dict[str, Any],
    text: str,
    lang: Lang,
    n: int,
    results: tuple[dict[str, Any], ...] | None,
) -> list[str]:
    """Preamble, words and citations, as token pieces; wrapped as JSON for `json_object`."""
    preamble = _tool_results(body, lang) + vision.describe(
        vision.media_of(_last_user_content(body)), lang
    )
    words = list(islice(word_stream(seed_of(text), lang), n))
    if preamble and lang == "en":
        preamble = preamble.rstrip()
        if words:
            words[0] = " " + words[0]
    citations = "".join(
        f"[{ref['refer']}]" if lang == "zh" else f" [{ref['refer']}]"
        for ref in (results or ())[: search.CITED]
    )
    texts = split_tokens(preamble) + words + split_tokens(citations)
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_object":
        schema = _asked_schema(body)
        text = "".join(texts)
        value = {"answer": text} if schema is None else fill_schema(schema, text)
        texts = split_tokens(json.dumps(value, ensure_ascii=False))
    return texts
