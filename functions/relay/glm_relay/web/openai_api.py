"""The OpenAI-compatible API: ``POST /v1/chat/completions``, ``GET /v1/models[/{id}]``.

Any OpenAI SDK can point its ``base_url`` at ``<function URL>/v1`` with an access token as its
API key. Requests go through the same checks (``chat/options.py``), quotas and relay loop as
``/chat``; only the request and wire formats differ. What happens to each OpenAI field is decided
in ``openai_fields.py`` (and listed in the README): read, mapped, dropped when it is a default
that changes nothing, or refused with a code; never silently ignored.

Errors carry ``x-should-retry: false`` (what OpenAI SDKs read) unless nothing was sent upstream
and a retry may help: the relay already retried the upstream before the first byte, and an SDK
retrying on top would multiply one call into many.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from glm_relay.chat.messages import BASIC_ROLES, MessageRules, parse_messages
from glm_relay.chat.models import aliased, allowed_models, allowed_spec, default_model
from glm_relay.chat.options import read_fields
from glm_relay.chat.request import ChatRequest, build_chat, resolve_model
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.runtime import StreamingResponse
from glm_relay.web.anthropic.errors import from_anthropic_sdk
from glm_relay.web.body_limits import check_body_size, read_payload
from glm_relay.web.headers import SSE_HEADERS
from glm_relay.web.openai_errors import json_response, openai_error
from glm_relay.web.openai_fields import check_openai_fields
from glm_relay.web.openai_wire import OpenAIChunks, answer_failure, collect, finish_reason

if TYPE_CHECKING:
    from glm_relay.chat.session import ChatService, ChatSession
    from glm_relay.config import Settings
    from glm_relay.web.request import HttpRequest
    from glm_relay.web.routing import Exchange

# The relay cannot know when a model was published; a fixed value keeps the list stable.
MODELS_CREATED = 1_704_067_200  # 2024-01-01T00:00:00Z
OPENAI_MESSAGES = MessageRules(
    roles={**BASIC_ROLES, "developer": "system"},
    # A participant's name has no upstream equivalent; refusal and annotations are reply-only
    # fields an SDK echoes back when a reply is replayed as history.
    ignored_keys=frozenset({"name", "refusal", "annotations"}),
    strict=False,
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
        """``GET /v1/models``: the models this relay allows, with their limits; ``default``
        marks the one used when a request names none. With ``anthropic-version`` (Anthropic's
        SDKs send it), the list is in Anthropic's shape."""
        if from_anthropic_sdk(exchange.request):
            from glm_relay.web.anthropic.endpoints import anthropic_model_list

            return json_response(200, anthropic_model_list(list(allowed_models(self._settings))))
        data = [self._model_object(name) for name in allowed_models(self._settings)]
        return json_response(200, {"object": "list", "data": data})

    async def model(self, exchange: Exchange) -> StreamingResponse:
        """``GET /v1/models/{id}``: one allowed model (an alias, ``MODEL_ALIASES``, gives the
        model it stands for), or 404 in OpenAI's shape."""
        name = aliased(self._settings, exchange.params["id"])
        if allowed_spec(self._settings, name) is None:
            raise RelayError(
                ErrorCode.MODEL_NOT_FOUND,
                f"the model {name[:64]!r} does not exist or is not allowed here",
                extra={"param": "model"},
            )
        if from_anthropic_sdk(exchange.request):
            from glm_relay.web.anthropic.endpoints import anthropic_model

            return json_response(200, anthropic_model(name))
        return json_response(200, self._model_object(name))

    def _model_object(self, name: str) -> dict[str, Any]:
        spec = allowed_spec(self._settings, name)
        assert spec is not None
        return {
            "id": spec.name,
            "object": "model",
            "created": MODELS_CREATED,
            "owned_by": "zhipu",
            "default": spec.name == default_model(self._settings),
            **spec.describe(),
        }

    async def chat_completions(self, exchange: Exchange) -> StreamingResponse:
        """An SSE stream of chunks, or one ``chat.completion``."""
        request = exchange.request
        payload = read_payload(request, self._settings)
        completion = parse_completion(payload, self._settings)
        chat = completion.chat
        check_body_size(request, self._settings, chat.messages)
        session = await exchange.start_answer(self._chats, chat)
        completion_id = "chatcmpl-" + request.request_id
        created = int(time.time())
        if completion.stream:
            wire = OpenAIChunks(completion_id, chat.model, created, completion.include_usage)
            return StreamingResponse(200, dict(SSE_HEADERS), session.body(wire))
        return await _whole_answer(request, session, completion_id, chat.model, created)


def parse_completion(payload: dict[str, Any], settings: Settings) -> Completion:
    """Check an OpenAI request body; see ``openai_fields.py`` for the fields Zhipu lacks."""
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise RelayError(ErrorCode.INVALID_PARAMETER, "model is required and must be a string")
    check_openai_fields(payload)
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise RelayError(ErrorCode.INVALID_PARAMETER, "stream must be a boolean")
    include_usage = (payload.get("stream_options") or {}).get("include_usage")
    spec = resolve_model(settings, model)
    messages = parse_messages(payload.get("messages"), settings, OPENAI_MESSAGES, spec)
    fields_payload = payload
    if payload.get("user") is None and payload.get("safety_identifier") is not None:
        fields_payload = {**payload, "user": payload["safety_identifier"]}
    fields = read_fields(
        fields_payload, spec, settings, max_tokens_names=("max_completion_tokens", "max_tokens")
    )
    chat = build_chat(settings, spec, messages, fields)
    return Completion(chat, bool(stream), bool(include_usage))


async def _whole_answer(
    request: HttpRequest, session: ChatSession, completion_id: str, model: str, created: int
) -> StreamingResponse:
    """Run the relay loop to the end (so quotas, history and logs settle as for a stream),
    then answer with one JSON body, or with the error the stream ended in."""
    answer = await collect(session)
    if answer.failure is not None or answer.finish is None:
        return openai_error(request, answer_failure(answer.failure))
    completion: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": answer.message(), "finish_reason": finish_reason(answer.finish)}
        ],
        "usage": answer.usage,
    }
    if answer.web_search:
        completion["web_search"] = answer.web_search
    return json_response(200, completion)
