"""Responses ``input`` items as Chat Completions messages, for the chat core's message reader.

- ``message`` (roles user, assistant, system, developer): ``input_text`` / ``output_text`` parts
  are text, ``input_image`` an ``image_url`` part, ``input_file`` a ``file`` part (vision models);
  ``refusal`` parts are the assistant's text.
- ``reasoning``: the next assistant turn's ``reasoning_content``. With ``encrypted_content`` it is
  the reasoning the relay sealed (``chat/sealed.py``), verified; a seal that does not verify (not
  made by this relay, changed, or made before the Zhipu key rotated) is ``invalid_parameter``.
  Without it, the summary text (the relay's summaries are the whole reasoning).
- ``function_call``, ``custom_tool_call``, ``local_shell_call``: tool calls of the assistant turn
  they follow (consecutive calls and the message before them form one turn);
- ``function_call_output``, ``custom_tool_call_output``, ``local_shell_call_output``: tool
  messages (an output given as parts is its text parts joined). Each must answer a call made
  before it, in ``input`` or in the stored conversation it continues: an output for no call is
  ``invalid_messages`` (as OpenAI refuses it), never a tool result the model cannot place.
- ``web_search_call`` items are the record of a search the upstream ran: left out.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from glm_relay.chat.request import bad
from glm_relay.errors import ErrorCode
from glm_relay.web.responses.tools import ToolNames, call_arguments

if TYPE_CHECKING:
    from glm_relay.chat.sealed import ReasoningSeal

Message = dict[str, Any]
INVALID = ErrorCode.INVALID_MESSAGES
CALL_ITEMS = frozenset({"function_call", "custom_tool_call", "local_shell_call"})
OUTPUT_ITEMS = frozenset(
    {"function_call_output", "custom_tool_call_output", "local_shell_call_output"}
)
SKIPPED_ITEMS = frozenset({"web_search_call"})
TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text"})


def input_messages(
    value: Any,
    names: ToolNames,
    seal: ReasoningSeal | None,
    history: list[Message] | None = None,
) -> tuple[list[Message], list[str]]:
    """The messages ``input`` stands for (a string is one user message), and where in ``input``
    each comes from (for error messages); ``history`` is the stored conversation it continues,
    whose calls its outputs may answer."""
    if isinstance(value, str) and value.strip():
        return [{"role": "user", "content": value}], ["input"]
    if not isinstance(value, list) or not value:
        raise bad(INVALID, "input must be a non-empty string or a non-empty list of items", "input")
    calls = {call.get("id") for turn in history or () for call in turn.get("tool_calls") or ()}
    messages: list[Message] = []
    origins: list[str] = []  # the item each message came from
    reasoning: str | None = None  # waits for the assistant turn it belongs to
    where = "input"
    for index, item in enumerate(value):
        origins += [where] * (len(messages) - len(origins))
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise bad(INVALID, f"{where} must be an object", "input")
        kind = item.get("type", "message")
        if kind == "message":
            message = _message(item, where)
            if message["role"] == "assistant":
                message = _with_reasoning(message, reasoning)
            reasoning = None  # a reasoning belongs to the assistant turn right after it only
            messages.append(message)
        elif kind == "reasoning":
            reasoning = _reasoning(item, where, seal)
        elif kind in CALL_ITEMS:
            turn = _open_turn(messages, reasoning)
            reasoning = None
            name, arguments = call_arguments(item, names)
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise bad(INVALID, f"{where}.call_id must be a non-empty string", "input")
            function = {"name": name, "arguments": arguments}
            turn.setdefault("tool_calls", []).append(
                {"id": call_id, "type": "function", "function": function}
            )
            calls.add(call_id)
        elif kind in OUTPUT_ITEMS:
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise bad(INVALID, f"{where}.call_id must be a non-empty string", "input")
            if call_id not in calls:
                raise bad(
                    INVALID,
                    f"{where}: no tool call with call_id {str(call_id)[:64]!r} comes before this "
                    f"{kind} (send the call item too, or continue its previous_response_id)",
                    "input",
                )
            messages.append(
                {"role": "tool", "tool_call_id": call_id, "content": _output(item.get("output"))}
            )
        elif kind in SKIPPED_ITEMS:
            continue
        elif isinstance(kind, str):
            raise bad(
                ErrorCode.UNSUPPORTED_CONTENT,
                f"{where}: {kind[:32]!r} input items are not supported",
                "input",
            )
        else:
            raise bad(INVALID, f"{where}.type must be a string", "input")
    origins += [where] * (len(messages) - len(origins))
    return messages, origins


def _message(item: dict[str, Any], where: str) -> Message:
    role = item.get("role")
    content = item.get("content")
    if isinstance(content, list):
        content = [_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)]
    return {"role": role, "content": content}


def _part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    assert kind is None or isinstance(part, dict)
    if kind in TEXT_PARTS:
        return {"type": "text", "text": part.get("text")}
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal")}
    if kind == "input_image":
        if part.get("file_id") is not None:
            raise bad(ErrorCode.UNSUPPORTED_CONTENT, f"{where}: file_id images are not supported")
        image = {"url": part.get("image_url")}
        if part.get("detail") not in (None, "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if part.get("file_id") is not None:
            raise bad(ErrorCode.UNSUPPORTED_CONTENT, f"{where}: file_id files are not supported")
        source = {k: part[k] for k in ("file_url", "file_data") if part.get(k) is not None}
        return {"type": "file", "file": source}
    # The message reader names the part types it takes.
    return part if isinstance(part, dict) else {"type": None}


def _reasoning(item: dict[str, Any], where: str, seal: ReasoningSeal | None) -> str | None:
    sealed = item.get("encrypted_content")
    if sealed is not None:
        opened = seal.open(sealed) if seal is not None else None
        if opened is None:
            raise bad(
                ErrorCode.INVALID_PARAMETER,
                f"{where}.encrypted_content was not sealed by this relay (or its key changed)",
                "input",
            )
        return opened.reasoning or None
    summary = item.get("summary")
    if summary is not None and not isinstance(summary, list):
        raise bad(INVALID, f"{where}.summary must be a list of summary_text parts", "input")
    texts = [p.get("text") for p in summary or () if isinstance(p, dict)]
    text = "\n\n".join(t for t in texts if isinstance(t, str) and t)
    return text or None


def _with_reasoning(message: Message, reasoning: str | None) -> Message:
    if reasoning:
        message["reasoning_content"] = reasoning
    return message


def _open_turn(messages: list[Message], reasoning: str | None) -> Message:
    """The assistant turn a call belongs to: the last message when it is an assistant turn with
    nothing after it, else a new one."""
    if messages and messages[-1]["role"] == "assistant":
        turn = messages[-1]
        if reasoning and not turn.get("reasoning_content"):
            turn["reasoning_content"] = reasoning
        return turn
    turn = _with_reasoning({"role": "assistant", "content": None}, reasoning)
    messages.append(turn)
    return turn


def _output(output: Any) -> Any:
    if isinstance(output, list):
        texts = [p.get("text") for p in output if isinstance(p, dict)]
        return "\n".join(t for t in texts if isinstance(t, str))
    if isinstance(output, dict):
        return json.dumps(output, ensure_ascii=False)
    return output
