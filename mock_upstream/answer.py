"""The deterministic answer: which reasoning, content and tool-call pieces a request gets.

The same body always gets the same pieces, so a test can predict the exact text with
`expected_chunks(body)` instead of hard-coding it. `#chunks=N` sets how many word pieces there
are (`words`). Each piece is one token (a word, a character or a punctuation mark), so
`usage.completion_tokens` is the number of pieces sent (a whole tool call counts its tokens).

In order: reasoning pieces when the model reasons, then the tool calls (`tool_calls`) or else the
content (`content`), then the cut-offs of `stop` and `max_tokens` (`cutoffs`).
"""

from __future__ import annotations

from itertools import cycle, islice
from typing import Any

from mock_upstream import directives as directives_mod
from mock_upstream import faults, search
from mock_upstream.catalogue import ModelSpec, spec_for, thinking_on
from mock_upstream.content import content_texts
from mock_upstream.cutoffs import apply_max_tokens, apply_stop, stop_strings
from mock_upstream.pieces import Answer, Piece
from mock_upstream.prompt import last_user_text, prompt_tokens
from mock_upstream.tool_calls import call_pieces, calls_for, tool_stream_on
from mock_upstream.words import (
    UNICODE_CHUNKS,
    Lang,
    default_chunk_count,
    has_cjk,
    seed_of,
    word_stream,
)


def reasoning_on(body: dict[str, Any], spec: ModelSpec, shapes: set[str]) -> bool:
    """`#fault=reasoning` or `thinking` enabled; else the model's default (on for GLM-4.5+)."""
    return "reasoning" in shapes or thinking_on(body, spec)


def _reasoning_count(body: dict[str, Any], words: int) -> int:
    """Half the word count (at least one); `reasoning_effort` low halves it, max doubles it."""
    n = max(1, words // 2)
    effort = body.get("reasoning_effort")
    if effort in ("low", "minimal"):
        return max(1, n // 2)
    if effort == "max":
        return n * 2
    return n


def build_answer(body: dict[str, Any], directives: directives_mod.Directives, text: str) -> Answer:
    """The answer for a validated body; `text` is the last user message without directives.

    Raises `DirectiveError` when `#tool` names a function the body does not define.
    """
    spec = spec_for(body.get("model"))
    shapes = set(directives.faults) & faults.SHAPE_FAULTS
    lang: Lang = "zh" if has_cjk(text) else "en"
    count = directives.chunks
    n = count if count is not None else default_chunk_count(text)
    pieces: list[Piece] = []
    if reasoning_on(body, spec, shapes):
        reasoning_words = islice(
            word_stream(seed_of("reasoning:" + text), lang), _reasoning_count(body, n)
        )
        pieces.extend(Piece("reasoning", word) for word in reasoning_words)
    results = search.results(body, text)
    calls = calls_for(body, directives, text, shapes)
    if calls:
        pieces.extend(call_pieces(calls, tool_stream_on(body, spec), directives.tool_frames))
    elif directives.stamp:
        pieces.extend(Piece("content", None) for _ in range(n))
    elif "unicode" in shapes:
        m = count if count is not None else len(UNICODE_CHUNKS)
        pieces.extend(Piece("content", chunk) for chunk in islice(cycle(UNICODE_CHUNKS), m))
    else:
        texts = content_texts(body, text, lang, n, results)
        pieces.extend(Piece("content", t) for t in texts)

    finish_reason = "tool_calls" if calls else "stop"
    if not calls and not directives.stamp:
        pieces, _ = apply_stop(pieces, stop_strings(body))
    pieces, cut = apply_max_tokens(pieces, body.get("max_tokens"))
    if cut:
        finish_reason = "length"
    shown = results if results is not None and search.shown(body) else None
    return Answer(
        tuple(pieces),
        finish_reason,
        prompt_tokens(body.get("messages")),
        shown,
        directives.search_at or 0,
    )


def answer_for_body(body: dict[str, Any]) -> Answer:
    """Parse the directives out of `body` and build its answer (no faults applied)."""
    parsed, text = directives_mod.parse(last_user_text(body.get("messages")))
    return build_answer(body, parsed, text)


def expected_chunks(body: dict[str, Any]) -> list[str]:
    """The content chunks the server streams for `body` when no failure is injected.

    Shapes (`#fault=unicode`, `reasoning`, `tool_call`), the model's thinking default, tools,
    `stop`, `response_format` and `max_tokens` are taken into account; failures are not: under
    a mid-stream failure the client gets a prefix of this list. A `#stamp` answer depends on
    the send time and cannot be predicted.

    >>> body = {"model": "glm-4", "messages": [{"role": "user", "content": "hi #chunks=3"}]}
    >>> len(expected_chunks(body))
    3
    """
    parsed, text = directives_mod.parse(last_user_text(body.get("messages")))
    if parsed.stamp:
        raise ValueError("a #stamp answer is the send time of each chunk; it cannot be predicted")
    return build_answer(body, parsed, text).texts("content")


def expected_text(body: dict[str, Any]) -> str:
    """The whole content of the answer: `"".join(expected_chunks(body))`."""
    return "".join(expected_chunks(body))


def expected_reasoning_chunks(body: dict[str, Any]) -> list[str]:
    """The `reasoning_content` chunks streamed before the content (empty without reasoning)."""
    return answer_for_body(body).texts("reasoning")


def expected_tool_calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The complete calls the answer makes, as in a non-`tool_stream` delta (with `index`)."""
    return answer_for_body(body).tool_calls


def expected_tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The first tool call (of `#fault=tool_call`, `#tool=` or a mention), as in the delta."""
    return answer_for_body(body).tool_call


def expected_tool_call_deltas(body: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The `delta.tool_calls` list of each chunk that has one, in order: one chunk with every
    call, or with `tool_stream` a head per call followed by its argument fragments (the last
    of which is on the finish chunk under `#tool_frames=on_finish`)."""
    return [list(p.tool_calls) for p in answer_for_body(body).pieces if p.kind == "tool_call"]


def expected_web_search(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The `web_search` list the answer carries, or None when it carries none."""
    results = answer_for_body(body).web_search
    return None if results is None else list(results)
