"""Anthropic's ``system`` and ``messages`` in Zhipu's message shape, before the shared checks.

Anthropic keeps a turn's pieces as content blocks; Zhipu as message fields. The rules:

- ``system`` (a string or text blocks) and every ``role: "system"`` turn inside ``messages``
  (Claude Code sends one) are joined, in order, into the one leading system message: GLM reads
  instructions best there, and the conversation then ends with the user's turn as Zhipu expects.
- A user turn's ``tool_result`` blocks become ``tool`` messages (first, in order), its text,
  image and document blocks one user message after them (a PDF document is a ``file`` part). A
  result is text (a string, text and image blocks); ``is_error`` prefixes it with ``Error:``
  (Zhipu's tool message has no such flag); an image in a result becomes a placeholder naming it
  (Zhipu's tool messages take a string).
- An assistant turn's ``tool_use`` blocks become ``tool_calls``; its ``thinking`` and
  ``redacted_thinking`` blocks become ``reasoning_content`` only when their signature opens
  (the relay sealed it): a block whose signature fails is dropped, never trusted.
- A system turn's ``output_config`` (Claude Code's per-turn control) applies from that turn on:
  the last one given is the request's ``output_config``.
- ``cache_control`` is accepted everywhere and ignored (Zhipu caches by itself); ``null`` means
  "not set"; any other unknown key or block type is ``invalid_messages``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from glm_relay.chat.media import placeholder, read_media_part
from glm_relay.chat.request import bad
from glm_relay.errors import ErrorCode, RelayError

Message = dict[str, Any]
Unseal = Callable[[str], "str | None"]
ALWAYS_ALLOWED = frozenset({"type", "cache_control"})
TOOL_ERROR_PREFIX = "Error: "
IMAGE_NOT_SHOWN = " (not shown: a tool result reaches the model as text)"
# Where each kind of thinking block carries the relay's seal of its reasoning.
SEALED_FIELDS = {"thinking": "signature", "redacted_thinking": "data"}
# Keys a turn of each role may carry besides role and content.
TURN_CONTROLS: dict[Any, tuple[str, ...]] = {"system": ("output_config",)}


@dataclass(frozen=True, slots=True)
class Conversation:
    """The messages in Zhipu's shape, and the last per-turn ``output_config`` (or ``None``)."""

    messages: list[Message]
    output_config: Any = None


def zhipu_messages(system: Any, messages: Any, unseal: Unseal) -> Conversation:
    """The conversation in Zhipu's shape (``chat/messages.py`` checks it next)."""
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages must be a non-empty list")
    instructions = [_system_text(system, "system")] if system is not None else []
    out: list[Message] = []
    output_config = None
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _invalid(f"{where} must be an object")
        role, content = message.get("role"), message.get("content")
        _check_keys(message, {"role", "content", *TURN_CONTROLS.get(role, ())}, where)
        if role == "system":
            instructions.append(_system_text(content, f"{where}.content"))
            output_config = message.get("output_config", output_config)
        elif role == "user":
            out.extend(_user_turn(content, where))
        elif role == "assistant":
            out.append(_assistant_turn(content, where, unseal))
        else:
            raise _invalid(f"{where}.role must be user, assistant or system")
    instructions = [text for text in instructions if text.strip()]
    if instructions:
        out.insert(0, {"role": "system", "content": "\n\n".join(instructions)})
    return Conversation(out, output_config)


def _system_text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise _invalid(f"{where} must be a string or a list of text blocks")
    return "\n\n".join(_text(block, f"{where}[{i}]") for i, block in enumerate(value))


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    """``content`` as blocks: a string is one text block."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _invalid(f"{where}.content must be a string or a list of content blocks")
    for i, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _invalid(f"{where}.content[{i}] must be an object with a type")
    return content


def _user_turn(content: Any, where: str) -> list[Message]:
    results: list[Message] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(_blocks(content, where)):
        at = f"{where}.content[{i}]"
        kind = block["type"]
        if kind == "tool_result":
            results.append(_tool_result(block, at))
        elif kind == "text":
            parts.append({"type": "text", "text": _text(block, at)})
        elif kind == "image":
            parts.append(_image(block, at))
        elif kind == "document":
            parts.append(_document(block, at))
        else:
            raise _unsupported_block(kind, at, "user")
    if not parts:
        return results
    if all(p["type"] == "text" for p in parts):
        # Text models take a string: join the text blocks as /v1 joins text parts.
        return [*results, {"role": "user", "content": "\n".join(p["text"] for p in parts)}]
    return [*results, {"role": "user", "content": parts}]


def _assistant_turn(content: Any, where: str, unseal: Unseal) -> Message:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    reasoning: list[str] = []
    for i, block in enumerate(_blocks(content, where)):
        at = f"{where}.content[{i}]"
        kind = block["type"]
        if kind == "text":
            texts.append(_text(block, at))
        elif kind == "tool_use":
            calls.append(_tool_use(block, at))
        elif kind in SEALED_FIELDS:
            sealed = SEALED_FIELDS[kind]
            _check_keys(block, {"thinking", sealed} if kind == "thinking" else {sealed}, at)
            opened = _opened(block.get(sealed), unseal)
            if opened:
                reasoning.append(opened)
        else:
            raise _unsupported_block(kind, at, "assistant")
    message: Message = {"role": "assistant", "content": "".join(texts)}
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = "\n".join(reasoning)
    return message


def _opened(signature: Any, unseal: Unseal) -> str | None:
    """The reasoning a signature seals, or ``None`` (not ours, or altered: dropped)."""
    return unseal(signature) if isinstance(signature, str) and signature else None


def _text(block: Any, where: str) -> str:
    if not isinstance(block, dict) or block.get("type") != "text":
        raise _invalid(f"{where} must be a text block")
    _check_keys(block, {"text", "citations"}, where)
    if not isinstance(block.get("text"), str):
        raise _invalid(f"{where}.text must be a string")
    return str(block["text"])


def _image(block: dict[str, Any], where: str) -> dict[str, Any]:
    """An image block as an ``image_url`` part (a data URL for base64); the shared reader
    checks its size, and that the model takes images."""
    _check_keys(block, {"source"}, where)
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        assert isinstance(source, dict)
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not isinstance(data, str):
            raise _invalid(f"{where}.source needs media_type and data strings")
        url = f"data:{media_type};base64,{data}"
    elif kind == "url":
        assert isinstance(source, dict)
        if not isinstance(source.get("url"), str):
            raise _invalid(f"{where}.source.url must be a string")
        url = source["url"]
    else:
        raise bad(ErrorCode.UNSUPPORTED_CONTENT, f"{where}.source: images are base64 or url")
    return {"type": "image_url", "image_url": {"url": url}}


def _document(block: dict[str, Any], where: str) -> dict[str, Any]:
    """A document block: a ``base64`` or ``url`` source (a PDF) as a ``file`` part (vision
    models only, checked by the shared reader), a ``text`` source as text. ``title``, ``context``
    and ``citations`` have no upstream equivalent: refused as unknown keys."""
    _check_keys(block, {"source"}, where)
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "text" and isinstance(source, dict) and isinstance(source.get("data"), str):
        return {"type": "text", "text": source["data"]}
    if kind == "base64" and isinstance(source, dict):
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not isinstance(data, str):
            raise _invalid(f"{where}.source needs media_type and data strings")
        return {"type": "file", "file": {"file_data": f"data:{media_type};base64,{data}"}}
    if kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        return {"type": "file", "file": {"file_url": source["url"]}}
    raise bad(ErrorCode.UNSUPPORTED_CONTENT, f"{where}.source: documents are base64, url or text")


def _tool_result(block: dict[str, Any], where: str) -> Message:
    _check_keys(block, {"tool_use_id", "content", "is_error"}, where)
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise _invalid(f"{where}.tool_use_id must be a non-empty string")
    content = block.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "\n".join(
            _result_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)
        )
    else:
        raise _invalid(f"{where}.content must be a string or a list of text blocks")
    is_error = block.get("is_error")
    if is_error is not None and not isinstance(is_error, bool):
        raise _invalid(f"{where}.is_error must be a boolean")
    if is_error:
        text = TOOL_ERROR_PREFIX + text
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _result_part(part: Any, where: str) -> str:
    """A tool result's block as text: Zhipu's tool messages take a string, so an image (say,
    a screenshot an agent's tool returned) is checked and named by a placeholder the model
    reads, ``[image: image/png, 1234 bytes] (not shown: ...)``, rather than failing the turn."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "image":
        assert isinstance(part, dict)
        image = read_media_part("image_url", _image(part, where), where)
        return placeholder("image", image["image_url"]["url"]) + IMAGE_NOT_SHOWN
    if kind != "text":
        raise bad(ErrorCode.UNSUPPORTED_CONTENT, f"{where}: a tool result holds text and images")
    return _text(part, where)


def _tool_use(block: dict[str, Any], where: str) -> dict[str, Any]:
    _check_keys(block, {"id", "name", "input", "caller"}, where)
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input")
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise _invalid(f"{where} needs an id and a name")
    if not isinstance(arguments, dict):
        raise _invalid(f"{where}.input must be an object")
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
    }


def _check_keys(value: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(k for k, v in value.items() if v is not None and k not in allowed)
    unknown = [k for k in unknown if k not in ALWAYS_ALLOWED]
    if unknown:
        raise _invalid(f"{where}.{unknown[0][:32]}: unknown field")


def _unsupported_block(kind: str, where: str, role: str) -> RelayError:
    message = f"{where}: {kind[:32]!r} blocks are not accepted in {role} turns"
    return bad(ErrorCode.UNSUPPORTED_CONTENT, message)


def _invalid(message: str) -> RelayError:
    return RelayError(ErrorCode.INVALID_MESSAGES, message)
