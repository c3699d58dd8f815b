"""A quick estimate of how many tokens a text is, where the upstream has not counted yet.

Used for ``/v1/messages/count_tokens`` and the input count of a Messages stream's first event
(Zhipu reports usage only at the end). A token here is a run of ASCII letters and digits, one
punctuation mark, or one non-ASCII character: no tokenizer is loaded (cold start) and the count
costs one regular-expression pass. It is what the fake upstream counts, so there the estimate is
exact for text; Zhipu's own tokenizer joins common words and splits rare ones, so against it the
estimate is a rough figure (see the README).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from glm_relay.chat.request import message_texts

_TOKEN = re.compile(r"[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` by the rule above. Counted by ``subn`` rather than ``findall``, which
    would hold every token of an agent's megabytes of history as a string at once."""
    return _TOKEN.subn("", text)[1]


def estimate_prompt_tokens(
    messages: Iterable[dict[str, Any]], tools: Iterable[dict[str, Any]] = ()
) -> int:
    """Tokens of a chat's messages (text content, kept reasoning, tool-call arguments) and of
    its tools' JSON; media count nothing (the upstream's usage counts them)."""
    total = sum(estimate_tokens(text) for text in message_texts(messages))
    for tool in tools:
        total += estimate_tokens(json.dumps(tool, ensure_ascii=False))
    return total
