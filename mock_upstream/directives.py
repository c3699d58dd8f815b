"""Directives: `#name=value` words in the last user message that steer one request.

They let any test, even a person typing into a browser, pick a behaviour without touching the
server's configuration. A word is a directive when it starts with `#` and names a known
directive; several may share one word joined by `&` (`#fault=unavailable&times=1`). A bare `#word`
that is not a directive is ordinary text (`#python` stays in the prompt); an unknown `#word=value`
is an error so that typos fail loudly.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from mock_upstream import faults

# name -> (attribute, upper bound); every one of these takes a non-negative integer.
_INT_DIRECTIVES: dict[str, tuple[str, int]] = {
    "chunks": ("chunks", 1_000_000),
    "delay": ("delay_ms", 3_600_000),
    "first": ("first_ms", 3_600_000),
    "hold": ("hold_ms", 3_600_000),
    "after": ("after", 1_000_000),
    "times": ("times", 1_000_000),
    "retry_after": ("retry_after", 86_400),
    "search_at": ("search_at", 1_000_000),
}
_FLAGS = {"stamp": "stamp"}
KNOWN = frozenset({"fault", "tool", "tool_frames", "args", *_INT_DIRECTIVES, *_FLAGS})
TOOL_FRAME_STYLES = frozenset({"repeat", "on_finish", "truncated"})
NO_TOOL = "none"  # `#tool=none`: never call a tool


class DirectiveError(ValueError):
    """A directive word that names nothing or carries a bad value."""


@dataclass(frozen=True)
class Directives:
    """The parsed directives of one request; `None` means "use the server-wide setting"."""

    faults: tuple[str, ...] = ()
    chunks: int | None = None
    delay_ms: int | None = None
    first_ms: int | None = None
    hold_ms: int | None = None
    after: int | None = None
    times: int | None = None
    retry_after: int | None = None
    search_at: int | None = None
    tools: tuple[str, ...] = ()  # `#tool=a,b`: call these functions; ("none",): call none
    tool_frames: tuple[str, ...] = ()  # `#tool_frames=repeat,on_finish`: tool_stream variants
    # `#args=name:value,name2:value2`: these string arguments in every call, over the filled ones
    args: tuple[tuple[str, str], ...] = ()
    stamp: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Only what was set, for the request log."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value not in (None, False, ()):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def _int_value(name: str, raw: str, upper: int) -> int:
    if not raw.isdigit():
        raise DirectiveError(f"#{name} needs a non-negative integer, got {raw!r}")
    value = int(raw)
    if value > upper:
        raise DirectiveError(f"#{name} must be at most {upper}")
    return value


def _tool_names(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    if not names:
        raise DirectiveError("#tool needs a function name (or none)")
    if NO_TOOL in names and len(names) > 1:
        raise DirectiveError("#tool=none cannot be combined with names")
    return names


def _arg_pairs(raw: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in raw.split(","):
        name, colon, value = item.partition(":")
        if not name or not colon:
            raise DirectiveError(f"#args takes name:value pairs, got {item!r}")
        pairs.append((name, value))
    return tuple(pairs)


def _pairs(word: str) -> list[tuple[str, str | None]] | None:
    """Split `#a=1&b=2` into pairs, or None when the word is plain text."""
    body = word[1:]
    if not body:
        return None
    pairs: list[tuple[str, str | None]] = []
    for part in body.split("&"):
        name, eq, value = part.partition("=")
        pairs.append((name, value if eq else None))
    first_name, first_value = pairs[0]
    if first_name not in KNOWN and first_value is None and len(pairs) == 1:
        return None
    return pairs


def parse(text: str) -> tuple[Directives, str]:
    """Read the directives out of `text`; also return the text without them.

    The remaining words are joined by single spaces: that is the text the answer is derived from,
    so `hello #delay=5` and `hello` get the same answer.

    >>> parse("hi #fault=drop&after=2 #stamp")[0].faults
    ('drop',)
    """
    values: dict[str, Any] = {}
    kept: list[str] = []
    for word in text.split():
        pairs = _pairs(word) if word.startswith("#") else None
        if pairs is None:
            kept.append(word)
            continue
        for name, raw in pairs:
            if name not in KNOWN:
                raise DirectiveError(f"unknown directive #{name}")
            if name in _FLAGS:
                if raw not in (None, "", "1", "true"):
                    raise DirectiveError(f"#{name} takes no value")
                values[_FLAGS[name]] = True
            elif raw is None or raw == "":
                raise DirectiveError(f"#{name} needs a value (#{name}=...)")
            elif name == "fault":
                try:
                    values["faults"] = faults.parse_fault_list(raw)
                except ValueError as exc:
                    raise DirectiveError(str(exc)) from None
            elif name == "tool":
                values["tools"] = _tool_names(raw)
            elif name == "args":
                values["args"] = _arg_pairs(raw)
            elif name == "tool_frames":
                styles = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
                unknown = [n for n in styles if n not in TOOL_FRAME_STYLES]
                if not styles or unknown:
                    known = ", ".join(sorted(TOOL_FRAME_STYLES))
                    raise DirectiveError(f"#tool_frames takes {known}, got {raw!r}")
                values["tool_frames"] = styles
            else:
                attribute, upper = _INT_DIRECTIVES[name]
                values[attribute] = _int_value(name, raw, upper)
    return Directives(**values), " ".join(kept)
