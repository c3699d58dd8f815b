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
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from glm_relay.chat.messages import BASIC_ROLES, MessageRules, parse_messages
from glm_relay.chat.request import ChatRequest, build_chat, max_tokens_param, number_param
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.runtime import StreamingResponse
from glm_relay.web.headers import SSE_HEADERS
from glm_relay.web.openai_errors import json_response, openai_error
from glm_relay.web.openai_wire import CollectedAnswer, OpenAIChunks

if TYPE_CHECKING:
    from glm_relay.chat.session import ChatService, ChatSession
    from glm_relay.config import Settings
    from glm_relay.web.request import HttpRequest
    from glm_relay.web.routing import Exchange

# The relay cannot know when a model was published; a fixed value keeps the list stable.
MODELS_CREATED = 1_704_067_200  # 2024-01-01T00:00:00Z
OPENAI_MESSAGES = MessageRules(
    roles={**BASIC_ROLES, "developer": "system"},
    text_parts=True,
    refused_keys={
        "tool_calls": "tool calls are not supported by this relay",
        "function_call": "tool calls are not supported by this relay",
    },
)


@dataclass(frozen=True, slots=True)
class Completion:
    """A validated ``chat/completions`` request: the chat and how to deliver the answer."""

    chat: ChatRequest
    stream: bool = False
    include_usage: bool = False


class OpenAIEndpoints:
    """The endpoints under ``/v1``."""

    def __init__(self, settings: Settings, chats: ChatService) -> None:
        self._settings = settings
        self._chats = chats

    async def models(self, exchange: Exchange) -> StreamingResponse:
        """``GET /v1/models``: the models this relay allows."""
        data = [
            {"id": model, "object": "model", "created": MODELS_CREATED, "owned_by": "zhipu"}
            for model in self._settings.allowed_models
        ]
        return json_response(200, {"object": "list", "data": data})

    async def chat_completions(self, exchange: Exchange) -> StreamingResponse:
        """An SSE stream of chunks, or one ``chat.completion``."""
        request = exchange.request
        payload = request.json_object(self._settings.max_body_bytes)
        completion = parse_completion(payload, self._settings)
        chat = completion.chat
        exchange.question = chat.messages[-1]["content"]
        session = await self._chats.start(
            chat,
            request_id=request.request_id,
            remaining_ms=exchange.context.get_remaining_time_in_millis(),
            claims=exchange.claims,
        )
        exchange.outcome = session.outcome
        completion_id = "chatcmpl-" + request.request_id
        created = int(time.time())
        if completion.stream:
            wire = OpenAIChunks(completion_id, chat.model, created, completion.include_usage)
            return StreamingResponse(200, dict(SSE_HEADERS), session.body(wire))
        return await _whole_answer(request, session, completion_id, chat.model, created)


def parse_completion(payload: dict[str, Any], settings: Settings) -> Completion:
    """Check an OpenAI request body against ``/chat``'s rules; unknown fields are ignored."""
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise RelayError(ErrorCode.INVALID_PARAMETER, "model is required and must be a string")
    n = payload.get("n")
    if n is not None and (isinstance(n, bool) or n != 1):
        raise RelayError(ErrorCode.INVALID_PARAMETER, "n must be 1: the relay returns one choice")
    for name in ("tools", "functions"):
        if payload.get(name):
            raise RelayError(ErrorCode.INVALID_PARAMETER, f"{name} are not supported by this relay")
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise RelayError(ErrorCode.INVALID_PARAMETER, "stream must be a boolean")
    options = payload.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise RelayError(ErrorCode.INVALID_PARAMETER, "stream_options must be an object")
    include_usage = (options or {}).get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise RelayError(
            ErrorCode.INVALID_PARAMETER, "stream_options.include_usage must be a boolean"
        )
    newer = max_tokens_param(payload, "max_completion_tokens", settings)
    chat = build_chat(
        settings,
        model=model,
        messages=parse_messages(payload.get("messages"), settings, OPENAI_MESSAGES),
        max_tokens=newer or max_tokens_param(payload, "max_tokens", settings),
        temperature=number_param(payload, "temperature", low_open=False),
        top_p=number_param(payload, "top_p", low_open=True),
    )
    return Completion(chat, bool(stream), bool(include_usage))


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
        failure = answer.failure or RelayError(
            ErrorCode.INTERNAL_ERROR, "the answer did not finish"
        )
        return openai_error(request, failure)
    completion: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": answer.message(), "finish_reason": answer.finish.finish_reason}
        ],
        "usage": answer.finish.usage,
    }
    if answer.web_search:
        completion["web_search"] = answer.web_search
    return json_response(200, completion)
