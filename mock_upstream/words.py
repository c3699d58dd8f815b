"""The words of an answer: a reproducible stream of tokens seeded by the prompt's text.

The words come from a hash of the last user message with its directives removed, so the same
prompt always gets the same words and a longer answer starts with the shorter one. A prompt with
Chinese characters gets Chinese words. Each word is one token (a word, a character or a full
stop), as `prompt.count_tokens` counts them. `UNICODE_CHUNKS` is the fixed text of the `unicode`
shape instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Literal

Lang = Literal["en", "zh"]

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


def seed_of(text: str) -> bytes:
    """The hash every deterministic choice about an answer to `text` starts from."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def word_stream(seed: bytes, lang: Lang = "en") -> Iterator[str]:
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
    return 12 + seed_of(text)[0] % 13


def has_cjk(text: str) -> bool:
    """Whether the prompt holds Chinese characters (then the answer is in Chinese)."""
    return any(
        "\u4e00" <= ch <= "\u9fff"
        or "\u3400" <= ch <= "\u4dbf"
        or "\U00020000" <= ch <= "\U0002ebef"
        for ch in text
    )
