"""The OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any OpenAI SDK can point its ``base_url`` at ``<function URL>/v1`` with an access token as its
API key. Requests go through the same checks, quotas and relay loop as ``/chat``; only the request
and wire formats differ. Compatibility choices:

* ``model`` is required (the SDK always sends it) and must be one of the allowed models.
* Message roles are system, user and assistant; ``developer`` is read as system. Content is a
  string or a list of ``{"type": "text"}`` parts, joined with newlines. Tool messages and
  non-text parts are refused: the relay has no way to pass them on.
* ``temperature`` is limited to [0, 1] (Zhipu's range, narrower than OpenAI's [0, 2]).
  ``max_completion_tokens`` wins over ``max_tokens``; as on ``/chat``, a value over
  ``MAX_TOKENS_CAP`` is a 400 and an access token's own limit lowers it silently.
* Fields whose effect the relay cannot deliver are refused rather than silently dropped:
  ``n`` other than 1, and ``tools`` / ``functions``. Every other field (``user``, ``seed``,
  ``stop``, penalties, ``response_format``, ``metadata``, ...) is ignored, so SDK defaults and
  newer fields never break a request.
* A stream that fails after it began ends with ``data: {"error": {...}}`` and no ``[DONE]``: the
  SDK raises ``APIError`` on that frame, and a client that ignores it still does not mistake the
  answer for a complete one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from glm_relay.app import JSON_HEADERS, SSE_HEADERS
from glm_relay.errors import RelayError
from glm_relay.response import StreamingResponse, fixed_response
from glm_relay.sse import dumps_data
from glm_relay.validation import (
    ChatRequest,
    build_chat,
    checked_content,
    max_tokens_param,
    message_list,
    number_param,
    read_json_object,
    require_user_message,
)

if TYPE_CHECKING:
    from glm_relay.access import AccessClaims
    from glm_relay.app import RelayApp
    from glm_relay.config import Settings
    from glm_relay.context import InvocationContext
    from glm_relay.relay import ChatSession, Outcome
    from glm_relay.request import HttpRequest
    from glm_relay.zhipu import Finish, Piece

# The relay cannot know when a model was published; a fixed value keeps the list stable.
MODELS_CREATED = 1_704_067_200  # 2024-01-01T00:00:00Z
ROLE_OF = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
DONE_FRAME = b"data: [DONE]\n\n"


def models(app: RelayApp, request: HttpRequest) -> StreamingResponse:
    """``GET /v1/models``: the models this relay allows."""
    data = [
        {"id": model, "object": "model", "created": MODELS_CREATED, "owned_by": "zhipu"}
        for model in app.settings.allowed_models
    ]
    return _json(request, 200, {"object": "list", "data": data})


async def chat_completions(
    app: RelayApp,
    request: HttpRequest,
    context: InvocationContext,
    claims: AccessClaims | None,
) -> StreamingResponse:
    """``POST /v1/chat/completions``: an SSE stream of chunks, or one ``chat.completion``."""
    completion = parse_completion(read_json_object(request, app.settings), app.settings)
    chat = completion.chat
    session = await app.start_chat(request, chat, context, claims)
    completion_id = "chatcmpl-" + request.request_id
    created = int(time.time())
    if completion.stream:
        wire = OpenAIChunks(completion_id, chat.model, created, completion.include_usage)
        headers = {**SSE_HEADERS, "X-Request-Id": request.request_id}
        return StreamingResponse(200, headers, session.body(wire), accounted=True)
    return await _whole_answer(request, session, completion_id, chat.model, created)


def error_response(request: HttpRequest, error: RelayError) -> StreamingResponse:
    """A ``RelayError`` in OpenAI's error shape, so the SDK raises the matching exception."""
    response = _json(request, error.status, {"error": error_object(error)})
    response.headers.update(error.response_headers())
    # The SDK reads this instead of guessing from the status (e.g. a used-up balance is a 503
    # that retrying cannot fix).
    response.headers["x-should-retry"] = "true" if error.retryable else "false"
    return response


def error_object(error: RelayError) -> dict[str, Any]:
    """OpenAI's ``error`` object; ``code`` is the relay's catalogued code."""
    return {
        "message": error.message,
        "type": _error_type(error.status),
        "param": None,
        "code": error.code,
        **error.extra,
    }


def _error_type(status: int) -> str:
    types = {
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }
    return types.get(status, "server_error" if status >= 500 else "invalid_request_error")


@dataclass(frozen=True, slots=True)
class Completion:
    """A validated ``chat/completions`` request: the chat and how to deliver the answer."""

    chat: ChatRequest
    stream: bool = False
    include_usage: bool = False


def parse_completion(payload: dict[str, Any], settings: Settings) -> Completion:
    """Check an OpenAI request body against ``/chat``'s rules; unknown fields are ignored."""
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise RelayError.of("invalid_parameter", "model is required and must be a string")
    n = payload.get("n")
    if n is not None and (isinstance(n, bool) or n != 1):
        raise RelayError.of("invalid_parameter", "n must be 1: the relay returns one choice")
    for name in ("tools", "functions"):
        if payload.get(name):
            raise RelayError.of("invalid_parameter", f"{name} are not supported by this relay")
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise RelayError.of("invalid_parameter", "stream must be a boolean")
    options = payload.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise RelayError.of("invalid_parameter", "stream_options must be an object")
    include_usage = (options or {}).get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise RelayError.of("invalid_parameter", "stream_options.include_usage must be a boolean")
    newer = max_tokens_param(payload, "max_completion_tokens", settings)
    chat = build_chat(
        settings,
        model=model,
        messages=_messages(payload.get("messages"), settings),
        max_tokens=newer or max_tokens_param(payload, "max_tokens", settings),
        temperature=number_param(payload, "temperature", low_open=False),
        top_p=number_param(payload, "top_p", low_open=True),
    )
    return Completion(chat, bool(stream), bool(include_usage))


def _messages(raw: Any, settings: Settings) -> list[dict[str, str]]:
    messages = []
    for index, message in enumerate(message_list(raw, settings)):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise RelayError.of("invalid_messages", f"{where} must be an object")
        role = message.get("role")
        role = ROLE_OF.get(role) if isinstance(role, str) else None
        if role is None:
            raise RelayError.of(
                "invalid_messages", f"{where}.role must be system, user or assistant"
            )
        if message.get("tool_calls") or message.get("function_call"):
            raise RelayError.of(
                "invalid_messages", f"{where}: tool calls are not supported by this relay"
            )
        content = checked_content(_text(message.get("content"), where), where)
        messages.append({"role": role, "content": content})
    return require_user_message(messages)


def _text(content: Any, where: str) -> str:
    """A message's content as one string: text parts are joined with newlines."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RelayError.of(
            "invalid_messages", f"{where}.content must be a string or a list of parts"
        )
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            raise RelayError.of(
                "invalid_messages", f"{where}.content: only text parts are supported"
            )
        if not isinstance(part.get("text"), str):
            raise RelayError.of(
                "invalid_messages", f"{where}.content: a text part needs a string text"
            )
        texts.append(part["text"])
    return "\n".join(texts)


def _frame(data: dict[str, Any]) -> bytes:
    """One ``data:`` line: the JSON holds no raw line break of any kind."""
    return f"data: {dumps_data(data)}\n\n".encode()


class OpenAIChunks:
    """``chat.completion.chunk`` frames: no ``id:`` or ``event:`` lines, ``[DONE]`` at the end."""

    def __init__(self, completion_id: str, model: str, created: int, include_usage: bool) -> None:
        self._head = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._include_usage = include_usage
        self._calls = 0

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk: dict[str, Any] = {
            **self._head,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        if self._include_usage:
            chunk["usage"] = None  # as OpenAI does: only the last chunk carries it
        return _frame(chunk)

    def opening(self) -> bytes | None:
        return self._chunk({"role": "assistant", "content": ""})

    def piece(self, piece: Piece) -> bytes:
        if piece.kind == "tool_call":
            call = {"index": self._calls, **piece.value}
            self._calls += 1
            return self._chunk({"tool_calls": [call]})
        key = "reasoning_content" if piece.kind == "reasoning" else "content"
        return self._chunk({key: piece.value})

    def done(self, finish: Finish, outcome: Outcome) -> bytes:
        frames = self._chunk({}, finish.finish_reason)
        if self._include_usage:
            frames += _frame({**self._head, "choices": [], "usage": finish.usage})
        return frames + DONE_FRAME

    def error(self, error: RelayError) -> bytes:
        return _frame({"error": error_object(error)})


class CollectedAnswer:
    """A wire format that writes nothing and keeps the answer, for ``stream: false``."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: list[dict[str, Any]] = []
        self.finish: Finish | None = None
        self.failure: RelayError | None = None

    def opening(self) -> bytes | None:
        return None

    def piece(self, piece: Piece) -> bytes:
        if piece.kind == "tool_call":
            # Zhipu sends each call whole; a non-streamed call has no index.
            self.tool_calls.append({k: v for k, v in piece.value.items() if k != "index"})
        elif piece.kind == "reasoning":
            self.reasoning.append(piece.value)
        else:
            self.content.append(piece.value)
        return b""

    def done(self, finish: Finish, outcome: Outcome) -> bytes:
        self.finish = finish
        return b""

    def error(self, error: RelayError) -> bytes:
        self.failure = error
        return b""


async def _whole_answer(
    request: HttpRequest, session: ChatSession, completion_id: str, model: str, created: int
) -> StreamingResponse:
    """Run the relay loop to the end (so quotas, history and logs settle as for a stream),
    then answer with one JSON body, or with the error the stream ended in."""
    answer = CollectedAnswer()
    body = session.body(answer)
    try:
        async for _ in body:
            pass
    finally:
        await body.aclose()
    if answer.failure is not None or answer.finish is None:
        failure = answer.failure or RelayError.of("internal_error", "the answer did not finish")
        response = error_response(request, failure)
        response.accounted = True
        return response
    message: dict[str, Any] = {"role": "assistant", "content": "".join(answer.content)}
    if answer.reasoning:
        message["reasoning_content"] = "".join(answer.reasoning)
    if answer.tool_calls:
        message["tool_calls"] = answer.tool_calls
        message["content"] = message["content"] or None
    completion = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": answer.finish.finish_reason}],
        "usage": answer.finish.usage,
    }
    response = _json(request, 200, completion)
    response.accounted = True
    return response


def _json(request: HttpRequest, status: int, data: dict[str, Any]) -> StreamingResponse:
    payload = json.dumps(data, ensure_ascii=False).encode()
    return fixed_response(status, {**JSON_HEADERS, "X-Request-Id": request.request_id}, payload)
