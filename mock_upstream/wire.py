"""Zhipu's wire format: the JSON of each chunk and the SSE framing around it.

A stream is a sequence of `data: <json>` lines, each followed by a blank line, and nothing else:
no `event:`, `id:`, `retry:` or comment lines. Every delta repeats `"role":"assistant"`; no chunk
carries a `finish_reason` key until the last, which puts `finish_reason` before `delta`, has an
empty content delta and brings `usage` along; then `data: [DONE]`.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

SSE_CONTENT_TYPE = "text/event-stream;charset=UTF-8"
SSE_HEADERS: dict[str, str] = {"content-type": SSE_CONTENT_TYPE, "cache-control": "no-cache"}
JSON_HEADERS: dict[str, str] = {"content-type": "application/json; charset=UTF-8"}

LF_END = "\n\n"  # a data line and the blank line that ends the event
CRLF_END = "\r\n\r\n"  # the same with CRLF line ends (the `crlf` shape)
DONE = "[DONE]"

# Python's str.splitlines() (used by the official SDK and by openai-python to cut SSE lines)
# also breaks lines at these; JSON allows them raw, so they are escaped to keep one frame one line.
_LINE_BREAKERS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def dumps(value: Any) -> str:
    """Compact JSON with UTF-8 text as-is (like Zhipu), minus the characters that split lines."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if any(ch in text for ch in _LINE_BREAKERS):
        for ch, escaped in _LINE_BREAKERS.items():
            text = text.replace(ch, escaped)
    return text


def encode(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def completion_id() -> str:
    """Zhipu's id shape: local time to the second, then 16 hex digits."""
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)


def usage(prompt_tokens: int, completion_tokens: int, reasoning_tokens: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    if reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return out


class ChunkEncoder:
    """Builds the frames of one stream; the hot path (content deltas) is a prefix and a suffix
    around the JSON string, so a long stream costs one small `json.dumps` per chunk."""

    def __init__(self, chunk_id: str, created: int, model: str, crlf: bool = False) -> None:
        self.end = CRLF_END if crlf else LF_END
        self.base: dict[str, Any] = {
            "id": chunk_id,
            "created": created,
            "object": "chat.completion.chunk",
            "model": model,
        }
        # `data: {"id":...,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant",`
        self._open = "data: " + dumps(self.base)[:-1] + ',"choices":[{"index":0,"delta":'
        head = self._open + '{"role":"assistant",'
        self._content_prefix = encode(head + '"content":')
        self._reasoning_prefix = encode(head + '"reasoning_content":')
        self._suffix = encode("}}]}" + self.end)

    def frame(self, value: Any) -> bytes:
        return encode("data: " + dumps(value) + self.end)

    def _chunk(self, delta: dict[str, Any], extra: dict[str, Any] | None) -> bytes:
        return self.frame({**self.base, "choices": [{"index": 0, "delta": delta}], **(extra or {})})

    def content(self, text: str, extra: dict[str, Any] | None = None) -> bytes:
        """A content delta; `extra` adds top-level fields (a `web_search` list)."""
        if extra:
            return self._chunk({"role": "assistant", "content": text}, extra)
        return self._content_prefix + encode(dumps(text)) + self._suffix

    def reasoning(self, text: str, extra: dict[str, Any] | None = None) -> bytes:
        if extra:
            return self._chunk({"role": "assistant", "reasoning_content": text}, extra)
        return self._reasoning_prefix + encode(dumps(text)) + self._suffix

    def tool_calls(self, calls: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> bytes:
        return self._chunk({"role": "assistant", "tool_calls": calls}, extra)

    def final(
        self,
        finish_reason: str,
        usage: dict[str, Any],
        extra: dict[str, Any] | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
    ) -> bytes:
        """The last chunk; `tool_calls` puts a last argument fragment in its delta."""
        delta: dict[str, Any] = {"role": "assistant", "content": ""}
        if tool_calls:
            delta = {"role": "assistant", "tool_calls": tool_calls}
        choice = {"index": 0, "finish_reason": finish_reason, "delta": delta}
        return self.frame({**self.base, "choices": [choice], "usage": usage, **(extra or {})})

    def error(self, code: str, message: str, numeric: bool = False) -> bytes:
        return self.frame({"error": {"code": int(code) if numeric else code, "message": message}})

    def malformed(self) -> bytes:
        """A frame cut off mid-JSON, as a broken proxy or a crashed worker would leave it."""
        return encode(self._open + '{"rol' + self.end)

    def done(self) -> bytes:
        return encode("data: " + DONE + self.end)


def completion_body(
    chunk_id: str,
    created: int,
    model: str,
    message: dict[str, Any],
    finish_reason: str,
    usage: dict[str, Any],
    request_id: str | None,
    web_search: list[dict[str, Any]] | None = None,
) -> bytes:
    """The `stream=false` answer: one `chat.completion` object (`web_search` at the top level)."""
    body: dict[str, Any] = {
        "choices": [{"finish_reason": finish_reason, "index": 0, "message": message}],
        "created": created,
        "id": chunk_id,
        "model": model,
        "object": "chat.completion",
        "request_id": request_id or chunk_id,
        "usage": usage,
    }
    if web_search is not None:
        body["web_search"] = web_search
    return encode(dumps(body))
