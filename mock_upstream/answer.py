"""The deterministic answer: which reasoning, content and tool-call pieces a request gets.

The same body always gets the same pieces, so a test can predict the exact text with
`expected_chunks(body)` instead of hard-coding it. The words come from a hash of the last user
message with its directives removed; `#chunks=N` sets how many content pieces there are, and a
longer answer starts with the shorter one. Each piece is one token (a word or a full stop), so
`usage.completion_tokens` is the number of pieces sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import cycle, islice
from typing import Any, Literal

from mock_upstream import directives as directives_mod
from mock_upstream import faults
from mock_upstream.prompt import count_tokens, last_user_text, prompt_tokens

_WORDS = (
    *("the", "relay", "streams", "every", "token", "in", "order", "and", "a", "browser"),
    *("reads", "each", "small", "frame", "as", "it", "arrives", "while", "server", "keeps"),
    *("steady", "pace", "through", "quiet", "morning", "light", "with", "clear", "signals"),
    *("careful", "tests", "simple", "answers", "bright", "windows", "calm", "rivers", "north"),
    *("gardens", "paper", "lines", "data", "flows", "again"),
)

# The `unicode` shape: pieces chosen to break naive decoders. Pairs that must stay together are
# split across pieces on purpose: CR|LF, a ZWJ emoji family, an emoji and its skin-tone modifier,
# a letter and its combining accent, a backslash and the letter after it.
UNICODE_CHUNKS: tuple[str, ...] = (
    "你好\uff0c",  # fullwidth comma
    "世界\uff01\n",  # fullwidth exclamation mark
    "第二行𠀀",
    "\r",
    "\nEmoji: 😀 ",
    "👩",
    "\u200d👩\u200d",
    "👧 and 👍",
    "🏽, cafe",
    "\u0301 ",
    '"quoted" ',
    "back\\",
    "n is not a newline; C:\\path\\to ",
    "\r",
    "lone CR above\n\n",
    "data: [DONE]",
    " \u2028line sep\u2029para sep\u0085next line\t",
    "tab done 🎉",
)

DEFAULT_TOOL_NAME = "lookup"

PieceKind = Literal["reasoning", "content", "tool_call"]


@dataclass(frozen=True)
class Piece:
    """One token-like piece of the answer; one SSE frame when streamed.

    `text is None` marks a `#stamp` content piece whose text is the send time.
    """

    kind: PieceKind
    text: str | None = None
    tool_call: dict[str, Any] | None = None
    tokens: int = 1


@dataclass(frozen=True)
class Answer:
    pieces: tuple[Piece, ...]
    finish_reason: str  # "stop", "length" (max_tokens reached) or "tool_calls"
    prompt_tokens: int

    def texts(self, kind: PieceKind) -> list[str]:
        return [p.text or "" for p in self.pieces if p.kind == kind]

    @property
    def tool_call(self) -> dict[str, Any] | None:
        return next((p.tool_call for p in self.pieces if p.tool_call is not None), None)


def _seed(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _words(seed: bytes) -> Iterator[str]:
    """An endless, reproducible stream of sentence-shaped tokens (a word or a full stop)."""
    index = 0
    while True:
        head = hashlib.blake2b(seed + index.to_bytes(8, "big"), digest_size=16).digest()
        length = 4 + head[0] % 9
        for position in range(length):
            word = _WORDS[head[1 + position] % len(_WORDS)]
            if position == 0:
                word = word.capitalize()
            yield word if index == 0 and position == 0 else " " + word
        yield "."
        index += 1


def default_chunk_count(text: str) -> int:
    """How many content pieces an answer has without `#chunks`: 12 to 24, fixed per prompt."""
    return 12 + _seed(text)[0] % 13


def _tool_call(body: dict[str, Any], text: str) -> dict[str, Any]:
    name = DEFAULT_TOOL_NAME
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            name = function["name"]
            break
    call_id = "call_" + hashlib.blake2b(_seed(text) + b"tool", digest_size=12).hexdigest()
    arguments = json.dumps({"query": text}, ensure_ascii=False)
    return {
        "id": call_id,
        "index": 0,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _thinking_enabled(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") == "enabled"


def build_answer(body: dict[str, Any], directives: directives_mod.Directives, text: str) -> Answer:
    """The answer for a validated body; `text` is the last user message without directives."""
    shapes = set(directives.faults) & faults.SHAPE_FAULTS
    count = directives.chunks
    pieces: list[Piece] = []
    if "reasoning" in shapes or _thinking_enabled(body):
        n_reasoning = max(1, (count if count is not None else default_chunk_count(text)) // 2)
        reasoning_words = islice(_words(_seed("reasoning:" + text)), n_reasoning)
        pieces.extend(Piece("reasoning", word) for word in reasoning_words)
    if "tool_call" in shapes:
        call = _tool_call(body, text)
        function = call["function"]
        tokens = count_tokens(function["name"]) + count_tokens(function["arguments"])
        pieces.append(Piece("tool_call", tool_call=call, tokens=tokens))
    elif directives.stamp:
        n = count if count is not None else default_chunk_count(text)
        pieces.extend(Piece("content", None) for _ in range(n))
    elif "unicode" in shapes:
        n = count if count is not None else len(UNICODE_CHUNKS)
        pieces.extend(Piece("content", chunk) for chunk in islice(cycle(UNICODE_CHUNKS), n))
    else:
        n = count if count is not None else default_chunk_count(text)
        pieces.extend(Piece("content", word) for word in islice(_words(_seed(text)), n))

    finish_reason = "tool_calls" if "tool_call" in shapes else "stop"
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and sum(p.tokens for p in pieces) > max_tokens:
        kept: list[Piece] = []
        used = 0
        for piece in pieces:
            if used + piece.tokens > max_tokens:
                break
            kept.append(piece)
            used += piece.tokens
        pieces, finish_reason = kept, "length"
    return Answer(tuple(pieces), finish_reason, prompt_tokens(body.get("messages")))


def answer_for_body(body: dict[str, Any]) -> Answer:
    """Parse the directives out of `body` and build its answer (no faults applied)."""
    parsed, text = directives_mod.parse(last_user_text(body.get("messages")))
    return build_answer(body, parsed, text)


def expected_chunks(body: dict[str, Any]) -> list[str]:
    """The content chunks the server streams for `body` when no failure is injected.

    Shapes (`#fault=unicode`, `reasoning`, `tool_call`) and `max_tokens` are taken into account;
    failures are not: under a mid-stream failure the client gets a prefix of this list. A
    `#stamp` answer depends on the send time and cannot be predicted.

    >>> body = {"model": "glm-4", "messages": [{"role": "user", "content": "hi #chunks=3"}]}
    >>> len(expected_chunks(body))
    3
    """
    parsed, text = directives_mod.parse(last_user_text(body.get("messages")))
    if parsed.stamp:
        raise ValueError("a #stamp answer is the send time of each chunk; it cannot be predicted")
    return build_answer(body, parsed, text).texts("content")


def expected_reasoning_chunks(body: dict[str, Any]) -> list[str]:
    """The `reasoning_content` chunks streamed before the content (empty without reasoning)."""
    return answer_for_body(body).texts("reasoning")


def expected_tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The one tool call a `#fault=tool_call` request gets, exactly as it is in the delta."""
    return answer_for_body(body).tool_call
