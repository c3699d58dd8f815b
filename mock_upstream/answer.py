"""The deterministic answer: which reasoning, content and tool-call pieces a request gets.

The same body always gets the same pieces, so a test can predict the exact text with
`expected_chunks(body)` instead of hard-coding it. The words come from a hash of the last user
message with its directives removed; `#chunks=N` sets how many word pieces there are, and a
longer answer starts with the shorter one. A prompt with Chinese characters gets Chinese words.
Each piece is one token (a word, a character or a punctuation mark), so
`usage.completion_tokens` is the number of pieces sent (a whole tool call counts its tokens).

Content is assembled as: a preamble (quotes of trailing tool results, one sentence per image,
video or file of the last user message), the words, then web-search citations (` [ref_1]`);
`response_format: json_object` wraps that text as `{"answer": "<text>"}`; `stop` cuts it before
the first stop string; `max_tokens` cuts reasoning, then content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import cycle, islice
from typing import Any, Literal

from mock_upstream import directives as directives_mod
from mock_upstream import faults, search, tools, vision
from mock_upstream.catalogue import ModelSpec, spec_for
from mock_upstream.prompt import count_tokens, last_user_text, prompt_tokens, split_tokens

_WORDS = (
    *("the", "relay", "streams", "every", "token", "in", "order", "and", "a", "browser"),
    *("reads", "each", "small", "frame", "as", "it", "arrives", "while", "server", "keeps"),
    *("steady", "pace", "through", "quiet", "morning", "light", "with", "clear", "signals"),
    *("careful", "tests", "simple", "answers", "bright", "windows", "calm", "rivers", "north"),
    *("gardens", "paper", "lines", "data", "flows", "again"),
)

# Single characters, so each Chinese piece is one token as `prompt.count_tokens` counts them.
_ZH_CHARS = tuple(
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动"
)
_ZH_STOP = "。"

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

PieceKind = Literal["reasoning", "content", "tool_call"]
Lang = Literal["en", "zh"]


@dataclass(frozen=True)
class Piece:
    """One token-like piece of the answer; one SSE frame when streamed.

    `text is None` marks a `#stamp` content piece whose text is the send time. A tool-call piece
    holds the delta's `tool_calls` list: complete calls, or a `tool_stream` head or fragment.
    """

    kind: PieceKind
    text: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()
    tokens: int = 1
    on_finish: bool = False  # rides on the last chunk's delta instead of a frame of its own


@dataclass(frozen=True)
class Answer:
    pieces: tuple[Piece, ...]
    finish_reason: str  # "stop", "length" (max_tokens reached) or "tool_calls"
    prompt_tokens: int
    web_search: tuple[dict[str, Any], ...] | None = None  # sent on one chunk (None: not sent)
    search_at: int = 0  # which data frame carries `web_search` (past the end: the last chunk)

    def texts(self, kind: PieceKind) -> list[str]:
        return [p.text or "" for p in self.pieces if p.kind == kind]

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return merge_tool_calls(self.pieces)

    @property
    def tool_call(self) -> dict[str, Any] | None:
        calls = self.tool_calls
        return calls[0] if calls else None


def merge_tool_calls(pieces: tuple[Piece, ...] | list[Piece]) -> list[dict[str, Any]]:
    """The complete calls in `pieces`, `tool_stream` fragments joined by index."""
    calls: dict[int, dict[str, Any]] = {}
    for piece in pieces:
        for delta in piece.tool_calls:
            index = delta["index"]
            function = delta.get("function", {})
            if index not in calls:
                calls[index] = {
                    "id": delta.get("id"),
                    "index": index,
                    "type": "function",
                    "function": {"name": function.get("name"), "arguments": ""},
                }
            calls[index]["function"]["arguments"] += function.get("arguments", "")
    return [calls[i] for i in sorted(calls)]


def _seed(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _words(seed: bytes, lang: Lang = "en") -> Iterator[str]:
    """An endless, reproducible stream of sentence-shaped tokens (a word or a full stop)."""
    index = 0
    while True:
        head = hashlib.blake2b(seed + index.to_bytes(8, "big"), digest_size=16).digest()
        length = 4 + head[0] % 9
        for position in range(length):
            if lang == "zh":
                yield _ZH_CHARS[head[1 + position] % len(_ZH_CHARS)]
                continue
            word = _WORDS[head[1 + position] % len(_WORDS)]
            if position == 0:
                word = word.capitalize()
            yield word if index == 0 and position == 0 else " " + word
        yield _ZH_STOP if lang == "zh" else "."
        index += 1


def default_chunk_count(text: str) -> int:
    """How many content pieces an answer has without `#chunks`: 12 to 24, fixed per prompt."""
    return 12 + _seed(text)[0] % 13


def has_cjk(text: str) -> bool:
    """Whether the prompt holds Chinese characters (then the answer is in Chinese)."""
    return any(
        "\u4e00" <= ch <= "\u9fff"
        or "\u3400" <= ch <= "\u4dbf"
        or "\U00020000" <= ch <= "\U0002ebef"
        for ch in text
    )


def _thinking_type(body: dict[str, Any]) -> str | None:
    thinking = body.get("thinking")
    return thinking.get("type") if isinstance(thinking, dict) else None


def reasoning_on(body: dict[str, Any], spec: ModelSpec, shapes: set[str]) -> bool:
    """`#fault=reasoning` or `thinking` enabled; else the model's default (on for GLM-4.5+)."""
    if "reasoning" in shapes:
        return True
    kind = _thinking_type(body)
    if kind == "enabled":
        return True
    if kind == "disabled":
        return spec.thinking == "always"
    return spec.thinking != "optional"


def _reasoning_count(body: dict[str, Any], words: int) -> int:
    """Half the word count (at least one); `reasoning_effort` low halves it, max doubles it."""
    n = max(1, words // 2)
    effort = body.get("reasoning_effort")
    if effort in ("low", "minimal"):
        return max(1, n // 2)
    if effort == "max":
        return n * 2
    return n


def _last_role(body: dict[str, Any]) -> str | None:
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        role = messages[-1].get("role")
        return role if isinstance(role, str) else None
    return None


def _calls(
    body: dict[str, Any], parsed: directives_mod.Directives, text: str, shapes: set[str]
) -> list[dict[str, Any]]:
    """The complete calls the model makes (see `tools`), or none."""
    functions = tools.function_tools(body)
    if parsed.tools == (directives_mod.NO_TOOL,):
        chosen: list[dict[str, Any] | None] = []
    elif parsed.tools:
        try:
            chosen = list(tools.select(functions, parsed.tools))
        except ValueError as exc:
            raise directives_mod.DirectiveError(str(exc)) from None
    else:
        chosen = list(tools.mentioned(functions, text))
    if _last_role(body) != "user":
        chosen = []
    if not chosen and "tool_call" in shapes:
        chosen = [functions[0] if functions else None]
    seed = _seed(text)
    calls = []
    for index, function in enumerate(chosen):
        name = tools.DEFAULT_TOOL_NAME if function is None else function["name"]
        calls.append(
            {
                "id": tools.call_id(seed, index, name),
                "index": index,
                "type": "function",
                "function": {"name": name, "arguments": tools.arguments_for(function, text)},
            }
        )
    return calls


def _call_pieces(
    calls: list[dict[str, Any]], streamed: bool, styles: tuple[str, ...] = ()
) -> list[Piece]:
    """One piece with every complete call, or with `tool_stream` per call a head (id, type,
    name) and one piece per token of the arguments (`split_tokens`), carrying index only.

    `#tool_frames` varies what the docs leave open: `repeat` puts id, type and name on every
    fragment too; `on_finish` sends the last fragment on the finish chunk."""
    if not streamed:
        tokens = sum(
            count_tokens(c["function"]["name"]) + count_tokens(c["function"]["arguments"])
            for c in calls
        )
        return [Piece("tool_call", tool_calls=tuple(calls), tokens=tokens)]
    pieces = []
    for call in calls:
        name = call["function"]["name"]
        head = {"id": call["id"], "index": call["index"], "type": "function"}
        head["function"] = {"name": name}
        pieces.append(Piece("tool_call", tool_calls=(head,), tokens=count_tokens(name)))
        for fragment in split_tokens(call["function"]["arguments"]):
            delta: dict[str, Any] = {"index": call["index"], "function": {"arguments": fragment}}
            if "repeat" in styles:
                delta = {**head, "function": {"name": name, "arguments": fragment}}
            pieces.append(Piece("tool_call", tool_calls=(delta,)))
    if "on_finish" in styles and len(pieces) > 1:
        last = pieces[-1]
        pieces[-1] = Piece("tool_call", tool_calls=last.tool_calls, on_finish=True)
    return pieces


def tool_stream_on(body: dict[str, Any], spec: ModelSpec) -> bool:
    """`tool_stream: true` on a model that streams arguments (GLM-4.6 and later); older models
    accept the field and send whole calls."""
    return body.get("tool_stream") is True and body.get("stream") is True and spec.tool_stream


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


def _content_texts(
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
    words = list(islice(_words(_seed(text), lang), n))
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
        texts = split_tokens(json.dumps({"answer": "".join(texts)}, ensure_ascii=False))
    return texts


def _stop_strings(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    items = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    return [s for s in items if isinstance(s, str) and s]


def _apply_stop(pieces: list[Piece], stops: list[str]) -> tuple[list[Piece], bool]:
    """Cut the content before the first occurrence of any stop string."""
    if not stops:
        return pieces, False
    content = "".join(p.text or "" for p in pieces if p.kind == "content")
    found = [i for i in (content.find(s) for s in stops) if i >= 0]
    if not found:
        return pieces, False
    limit = min(found)
    out: list[Piece] = []
    used = 0
    for piece in pieces:
        if piece.kind != "content":
            out.append(piece)
            continue
        text = piece.text or ""
        if used + len(text) <= limit:
            out.append(piece)
            used += len(text)
            continue
        if limit > used:
            out.append(Piece("content", text[: limit - used]))
        break
    return out, True


def _apply_max_tokens(pieces: list[Piece], max_tokens: Any) -> tuple[list[Piece], bool]:
    if not isinstance(max_tokens, int) or sum(p.tokens for p in pieces) <= max_tokens:
        return pieces, False
    kept: list[Piece] = []
    used = 0
    for piece in pieces:
        if used + piece.tokens > max_tokens:
            break
        kept.append(piece)
        used += piece.tokens
    return kept, True


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
            _words(_seed("reasoning:" + text), lang), _reasoning_count(body, n)
        )
        pieces.extend(Piece("reasoning", word) for word in reasoning_words)
    results = search.results(body, text)
    calls = _calls(body, directives, text, shapes)
    if calls:
        pieces.extend(_call_pieces(calls, tool_stream_on(body, spec), directives.tool_frames))
    elif directives.stamp:
        pieces.extend(Piece("content", None) for _ in range(n))
    elif "unicode" in shapes:
        m = count if count is not None else len(UNICODE_CHUNKS)
        pieces.extend(Piece("content", chunk) for chunk in islice(cycle(UNICODE_CHUNKS), m))
    else:
        texts = _content_texts(body, text, lang, n, results)
        pieces.extend(Piece("content", t) for t in texts)

    finish_reason = "tool_calls" if calls else "stop"
    if not calls and not directives.stamp:
        pieces, _ = _apply_stop(pieces, _stop_strings(body))
    pieces, cut = _apply_max_tokens(pieces, body.get("max_tokens"))
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
