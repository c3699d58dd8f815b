"""What a request says: the text of its messages and how many tokens that is.

A "token" here is a word with its leading whitespace, a single punctuation mark or a single
non-ASCII character (so each CJK character or emoji counts as one). It is not Zhipu's tokenizer;
it only has to be stable, so usage numbers are predictable and consistent with what was sent.
"""

from __future__ import annotations

import json
import re
from typing import Any

_TOKEN = re.compile(r"\s*(?:[A-Za-z0-9_]+|[^\sA-Za-z0-9_])|\s+")


def split_tokens(text: str) -> list[str]:
    """Cut `text` into tokens that join back to exactly `text`.

    >>> split_tokens("Hi, 世界!")
    ['Hi', ',', ' 世', '界', '!']
    """
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return len(split_tokens(text))


def message_text(content: Any) -> str:
    """The text of a message's `content`: a string, or the text parts of a multimodal list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        return "\n".join(part for part in parts if isinstance(part, str))
    return json.dumps(content, ensure_ascii=False)


def last_user_text(messages: Any) -> str:
    """The text of the last `user` message, where directives live; empty when there is none."""
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


def system_instructions(messages: Any) -> list[str]:
    """The text of each `system` message whose content is a string, in order: where a client
    asks the model for a JSON schema or a function call."""
    return [
        message["content"]
        for message in messages or ()
        if isinstance(message, dict)
        and message.get("role") == "system"
        and isinstance(message.get("content"), str)
    ]


def prompt_tokens(messages: Any) -> int:
    """Tokens in all message contents as sent (directives included: they were sent)."""
    if not isinstance(messages, list):
        return 0
    return sum(
        count_tokens(message_text(message.get("content")))
        for message in messages
        if isinstance(message, dict)
    )
