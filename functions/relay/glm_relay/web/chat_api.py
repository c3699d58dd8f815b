"""``/chat``: ``GET`` for ``EventSource`` (the question in the query), ``POST`` for ``fetch``.

Both answer with the relay's own events (``chat_events.py``). A failure known before streaming
is one ``error`` event for an ``EventSource`` (it cannot read the body of a non-200 answer), and
JSON with its status for everyone else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glm_relay.chat.messages import BASIC_ROLES, MessageRules, parse_messages
from glm_relay.chat.options import read_fields
from glm_relay.chat.request import ChatRequest, build_chat, resolve_model, sendable
from glm_relay.chat.search import asked_for_search, with_search
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.runtime import StreamingResponse, fixed_response, single_chunk
from glm_relay.web.body_limits import check_body_size, read_payload
from glm_relay.web.chat_events import RelayEvents, error_event
from glm_relay.web.headers import JSON_HEADERS, SSE_HEADERS

if TYPE_CHECKING:
    from glm_relay.chat.session import ChatService
    from glm_relay.config import Settings
    from glm_relay.web.request import HttpRequest
    from glm_relay.web.routing import Exchange

# The fields ``chat/options.py`` reads, as on /v1 (without OpenAI's extras).
SHARED_FIELDS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "stop",
        "do_sample",
        "user",
        "thinking",
        "reasoning_effort",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "tool_stream",
    }
)
POST_FIELDS = SHARED_FIELDS | {"messages", "model", "conversation", "web_search"}
GET_PARAMS = frozenset(
    {
        "q",
        "model",
        "system",
        "access_token",
        "conversation",
        "thinking",
        "reasoning_effort",
        "web_search",
    }
)
POST_MESSAGES = MessageRules(roles=BASIC_ROLES)


class ChatEndpoints:
    """The endpoints of ``/chat``."""

    def __init__(self, settings: Settings, chats: ChatService) -> None:
        self._settings = settings
        self._chats = chats

    async def get(self, exchange: Exchange) -> StreamingResponse:
        return await self._relay(exchange, chat_from_query(exchange.request, self._settings))

    async def post(self, exchange: Exchange) -> StreamingResponse:
        return await self._relay(exchange, chat_from_body(exchange.request, self._settings))

    async def _relay(self, exchange: Exchange, chat: ChatRequest) -> StreamingResponse:
        request = exchange.request
        session = await exchange.start_answer(self._chats, chat)
        meta = {"request_id": request.request_id, "model": chat.model, **session.meta}
        events = RelayEvents(request.request_id, meta, tool_stream=chat.tool_stream)
        return StreamingResponse(200, dict(SSE_HEADERS), session.body(events))


def chat_error(request: HttpRequest | None, error: RelayError) -> StreamingResponse:
    """The ``ErrorFormat`` of every route outside ``/v1``."""
    if request is not None and request.wants_event_stream and request.method == "GET":
        return StreamingResponse(
            200, dict(SSE_HEADERS), single_chunk(error_event(request.request_id, error))
        )
    return fixed_response(
        error.status, {**JSON_HEADERS, **error.response_headers()}, error.to_json()
    )


def chat_from_query(request: HttpRequest, settings: Settings) -> ChatRequest:
    """``GET /chat?q=...&model=...&system=...&web_search=true`` (what EventSource can send)."""
    unknown = sorted(set(request.query) - GET_PARAMS)
    if unknown:
        raise RelayError(ErrorCode.UNKNOWN_PARAMETER, f"unknown query parameter: {unknown[0]}")
    question = request.query.get("q", "")
    if not question.strip():
        raise RelayError(
            ErrorCode.MISSING_PROMPT, "the query parameter q (the question) is required"
        )
    messages = []
    system = request.query.get("system")
    if system is not None:
        if not system.strip():
            raise RelayError(ErrorCode.INVALID_PARAMETER, "system must not be empty when given")
        messages.append({"role": "system", "content": sendable(system, "system")})
    messages.append({"role": "user", "content": sendable(question, "q")})
    spec = resolve_model(settings, request.query.get("model"))
    options: dict[str, Any] = {
        k: request.query[k] for k in ("thinking", "reasoning_effort") if k in request.query
    }
    fields = read_fields(options, spec, settings, max_tokens_names=())
    if asked_for_search(request.query.get("web_search"), words=True):
        fields = with_search(fields, settings, None)
    return build_chat(
        settings,
        spec,
        messages,
        fields,
        conversation_id=request.query.get("conversation") or None,
    )


def chat_from_body(request: HttpRequest, settings: Settings) -> ChatRequest:
    """``POST /chat`` with JSON ``{"messages": [...], "model", "temperature", ...}``."""
    payload = read_payload(request, settings)
    unknown = sorted(set(payload) - POST_FIELDS)
    if unknown:
        raise RelayError(ErrorCode.UNKNOWN_PARAMETER, f"unknown field: {unknown[0][:64]}")
    spec = resolve_model(settings, payload.get("model"))
    messages = parse_messages(payload.get("messages"), settings, POST_MESSAGES, spec)
    check_body_size(request, settings, messages)
    conversation = payload.get("conversation")
    if conversation is not None and not isinstance(conversation, str):
        raise RelayError(ErrorCode.INVALID_PARAMETER, "conversation must be a string")
    fields = read_fields(payload, spec, settings, max_tokens_names=("max_tokens",))
    if asked_for_search(payload.get("web_search")):
        fields = with_search(fields, settings, payload.get("tool_choice"))
    return build_chat(settings, spec, messages, fields, conversation_id=conversation or None)
