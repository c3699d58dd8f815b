"""Where an answer stops early: `stop` cuts the content before the first stop string, and
`max_tokens` cuts reasoning, then content, at that many tokens (finish reason `length`)."""

from __future__ import annotations

from typing import Any

from mock_upstream.pieces import Piece


def stop_strings(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    items = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    return [s for s in items if isinstance(s, str) and s]


def apply_stop(pieces: list[Piece], stops: list[str]) -> tuple[list[Piece], bool]:
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


def apply_max_tokens(pieces: list[Piece], max_tokens: Any) -> tuple[list[Piece], bool]:
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
