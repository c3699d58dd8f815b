"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens``: Anthropic's Messages API on the
relay's chat core.

Anthropic's SDKs and Claude Code point ``base_url`` / ``ANTHROPIC_BASE_URL`` at the function URL
and send a relay access token (or an identity provider's) as ``x-api-key`` or ``Authorization:
Bearer``. A request becomes a ``ChatRequest`` (``request.py``) and goes through the same quota,
relay loop and journal as ``/v1``; only the request and wire formats differ (``events.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from glm_relay.chat.sealed import ReasoningSeal
from glm_relay.chat.tokens import estimate_prompt_tokens
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.runtime import StreamingResponse
from glm_relay.web.anthropic.errors import anthropic_error
from glm_relay.web.anthropic.events import (
    MessageStream,
    ended_normally,
    message_head,
    whole_message,
)
from glm_relay.web.anthropic.request import MessagesCall, parse_messages_request
from glm_relay.web.body_limits import check_body_size, read_payload
from glm_relay.web.headers import SSE_HEADERS
from glm_relay.web.openai_errors import json_response
from glm_relay.web.openai_wire import answer_failure, collect

if TYPE_CHECKING:
    from glm_relay.chat.session import ChatService, ChatSession
    from glm_relay.config import Settings
    from glm_relay.upstream import CredentialStore
    from glm_relay.web.routing import Exchange

MESSAGE_ID_PREFIX = "msg_"
# What count_tokens takes (Anthropic's list), checked as for /v1/messages.
COUNT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "context_management",
    }
)


class MessagesEndpoints:
    """The endpoints under ``/v1/messages``."""

    def __init__(
        self, settings: Settings, chats: ChatService, credentials: CredentialStore
    ) -> None:
        self._settings = settings
        self._chats = chats
        self._credentials = credentials

    async def messages(self, exchange: Exchange) -> StreamingResponse:
        """An SSE stream of Messages events, or one ``message``."""
        request = exchange.request
        payload = read_payload(request, self._settings)
        seal = await self._credentials.reasoning_seal()
        call = parse_messages_request(payload, self._settings, unsealer(seal))
        chat = call.chat
        check_body_size(request, self._settings, chat.messages)
        session = await exchange.start_answer(self._chats, chat)
        # Counted while the upstream thinks of its first token.
        estimate = estimate_prompt_tokens(chat.messages, chat.tools)
        message_id = MESSAGE_ID_PREFIX + request.request_id
        if call.stream:
            wire = MessageStream(
                message_id,
                chat.model,
                estimate,
                partial(seal.seal, chat.model),
                show_thinking=call.show_thinking,
            )
            return StreamingResponse(200, dict(SSE_HEADERS), session.body(wire))
        return await self._whole(session, call, message_id, estimate, seal)

    async def count_tokens(self, exchange: Exchange) -> StreamingResponse:
        """``{"input_tokens": n}``: an estimate (``chat/tokens.py``), no upstream call."""
        payload = read_payload(exchange.request, self._settings)
        unknown = sorted(set(payload) - COUNT_FIELDS)
        if unknown:
            raise RelayError(
                ErrorCode.UNKNOWN_PARAMETER,
                f"{unknown[0][:64]}: unknown field",
                extra={"param": unknown[0][:64]},
            )
        seal = await self._credentials.reasoning_seal()
        # The shared checks need an output cap; counting does not.
        call = parse_messages_request({**payload, "max_tokens": 1}, self._settings, unsealer(seal))
        tokens = estimate_prompt_tokens(call.chat.messages, call.chat.tools)
        return json_response(200, {"input_tokens": tokens})

    async def _whole(
        self,
        session: ChatSession,
        call: MessagesCall,
        message_id: str,
        estimate: int,
        seal: ReasoningSeal,
    ) -> StreamingResponse:
        """Run the relay loop to its end (quotas, logs and the journal settle as for a stream),
        then answer with one ``message``, or with the error the answer ended in."""
        answer = await collect(session)
        finish = answer.finish
        if answer.failure is not None or finish is None or not ended_normally(finish):
            return anthropic_error(None, answer_failure(answer.failure))
        message = whole_message(
            message_head(message_id, call.chat.model),
            reasoning="".join(answer.reasoning),
            text="".join(answer.content),
            calls=answer.tool_calls.calls(),
            finish=finish,
            input_estimate=estimate,
            seal=partial(seal.seal, call.chat.model),
            show_thinking=call.show_thinking,
            cost=(answer.usage or {}).get("cost"),
        )
        return json_response(200, message)


def unsealer(seal: ReasoningSeal) -> Callable[[str], str | None]:
    """What a thinking block's signature seals: the reasoning (whichever model wrote it: a
    turn's reasoning is that turn's, whatever model answers next), or ``None``."""

    def unseal(signature: str) -> str | None:
        opened = seal.open(signature)
        return opened.reasoning if opened is not None else None

    return unseal


def anthropic_model_list(names: list[str]) -> dict[str, Any]:
    """``GET /v1/models`` as Anthropic's SDKs read it (sent with ``anthropic-version``)."""
    data = [anthropic_model(name) for name in names]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def anthropic_model(name: str) -> dict[str, Any]:
    """One model in Anthropic's shape (the relay cannot know a release date: a fixed one)."""
    return {
        "type": "model",
        "id": name,
        "display_name": name,
        "created_at": "2024-01-01T00:00:00Z",
    }
