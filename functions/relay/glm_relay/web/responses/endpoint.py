"""``POST /v1/responses``, ``GET`` and ``DELETE /v1/responses/{id}``: the Responses API on the
chat core.

A request is read into a ``ChatRequest`` (``request.py``), started like any chat (access token,
quota, the relay loop, resumable streams as on ``/v1``) and written as Responses events
(``events.py``) or, with ``stream: false``, as one Response object built by the same state
machine. Errors before the answer are OpenAI's error shape with ``x-should-retry``
(``web/openai_errors.py``); a non-streamed answer that fails is answered the same way.

Stored responses (``store``, default true) need ``CONVERSATIONS_TABLE``: without it a response is
not kept and says ``"store": false``, and ``previous_response_id`` is ``conversations_disabled``.
A response is written once its answer ends, with the answer's bookkeeping (``stored_response``:
a write that fails or outlasts the bookkeeping's bound is logged as not settled); a follow-up that
names it a moment before that write lands waits for it briefly (``PENDING_READS``). A large one is
split across several items (``state/responses.py``). One over ``MAX_STORED_BYTES`` compressed is
not kept: a warning says so, the Response object (``stream: false``) says ``"store": false``, and
a later reference to it is ``invalid_parameter`` "too large to store", not a 404.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Any

from glm_relay.chat.request import resolve_model
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.runtime import StreamingResponse
from glm_relay.state.responses import (
    ResponseTooLarge,
    StoredResponse,
    pack,
    too_large,
)
from glm_relay.web.body_limits import check_body_size, read_payload
from glm_relay.web.headers import SSE_HEADERS
from glm_relay.web.openai_errors import json_response, openai_error
from glm_relay.web.openai_wire import answer_failure, drain
from glm_relay.web.responses.events import ResponsesEvents
from glm_relay.web.responses.objects import OBJECT, ResponseHead
from glm_relay.web.responses.request import (
    check_payload,
    may_hold_surrogates,
    needs_seal,
    read_request,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from glm_relay.chat.relay import Outcome
    from glm_relay.chat.session import ChatService
    from glm_relay.config import Settings
    from glm_relay.state import UserState
    from glm_relay.upstream import CredentialStore
    from glm_relay.web.responses.request import ResponsesRequest
    from glm_relay.web.routing import Exchange
    from glm_relay.web.telemetry import Telemetry

# A follow-up may name a response whose answer the client has just read while its record is
# still being written: not found is asked again this many times, this far apart.
PENDING_READS = 5
PENDING_INTERVAL = 0.2
_UNSAFE_IN_ID = re.compile(r"[^A-Za-z0-9-]")  # request ids are UUIDs; item ids are written raw


class ResponsesEndpoints:
    """The Responses API routes under ``/v1``."""

    def __init__(
        self,
        settings: Settings,
        chats: ChatService,
        state: UserState,
        credentials: CredentialStore,
        telemetry: Telemetry,
    ) -> None:
        self._settings = settings
        self._telemetry = telemetry
        self._chats = chats
        self._state = state
        self._credentials = credentials

    async def create(self, exchange: Exchange) -> StreamingResponse:
        """``POST /v1/responses``: an SSE stream of events, or one Response object."""
        request, settings = exchange.request, self._settings
        payload = read_payload(request, settings)
        check_payload(payload, surrogates=may_hold_surrogates(request.body))
        spec = resolve_model(settings, payload.get("model"))
        owner = exchange.owner
        history = await self._history(payload.get("previous_response_id"), owner)
        payload = await self._with_references(payload, owner)
        seal = await self._credentials.reasoning_seal() if needs_seal(payload) else None
        asked = read_request(payload, spec, settings, history=history, seal=seal)
        check_body_size(request, settings, asked.chat.messages)
        stored = asked.store and self._state.enabled
        response_id = "resp_" + _UNSAFE_IN_ID.sub("", request.request_id)
        head = ResponseHead(response_id, int(time.time()), asked.chat.model, stored, asked.echo)
        wire = ResponsesEvents(head, asked.names, seal if asked.sealed_reasoning else None)
        session = await exchange.start_answer(self._chats, asked.chat)
        keep = self._keeper(head.id, wire, asked, owner) if stored else None
        body = session.body(wire, then=keep)
        if asked.stream:
            return StreamingResponse(200, dict(SSE_HEADERS), body)
        await drain(body)
        response = wire.response
        if response is None or wire.failure is not None:
            return openai_error(request, answer_failure(wire.failure))
        return json_response(200, response)

    async def get(self, exchange: Exchange) -> StreamingResponse:
        """``GET /v1/responses/{id}``: a stored response, for its owner."""
        if exchange.request.query.get("stream") not in (None, "false"):
            raise RelayError(
                ErrorCode.UNSUPPORTED_PARAMETER,
                "stream: reconnect to the stream with Last-Event-ID instead",
                extra={"param": "stream"},
            )
        response_id = exchange.params["id"]
        record = None
        if self._state.enabled:
            record = await _state_call(
                self._state.responses.get(response_id, exchange.owner), param=None
            )
        if record is None:
            raise _not_found(response_id)
        return json_response(200, record.response)

    async def delete(self, exchange: Exchange) -> StreamingResponse:
        """``DELETE /v1/responses/{id}``: forget a stored response."""
        response_id = exchange.params["id"]
        deleted = False
        if self._state.enabled:
            deleted = await _state_call(
                self._state.responses.delete(response_id, exchange.owner), param=None
            )
        if not deleted:
            raise _not_found(response_id)
        return json_response(200, {"id": response_id, "object": OBJECT, "deleted": True})

    async def _history(self, previous: str | None, owner: str) -> list[dict[str, Any]]:
        """The conversation ``previous_response_id`` continues (empty without one)."""
        if previous is None:
            return []
        return (await self._stored(previous, owner, "previous_response_id")).messages

    async def _with_references(self, payload: dict[str, Any], owner: str) -> dict[str, Any]:
        """``payload`` with each ``item_reference`` input item replaced by the stored output item
        it names (an item id holds its response's id and its place in the output)."""
        items = payload.get("input")
        if not isinstance(items, list) or not any(_is_reference(i) for i in items):
            return payload
        records: dict[str, StoredResponse] = {}
        resolved = []
        for item in items:
            if not _is_reference(item):
                resolved.append(item)
                continue
            item_id = item.get("id")
            rest = item_id.partition("_")[2] if isinstance(item_id, str) else ""
            response_id, place = f"resp_{rest[:-3]}", rest[-3:]
            if len(rest) < 4 or not place.isdigit():
                raise _not_found(str(item_id)[:80], param="input", what="Item")
            if response_id not in records:
                try:
                    records[response_id] = await self._stored(response_id, owner, "input")
                except RelayError as error:
                    if error.code is not ErrorCode.NOT_FOUND:
                        raise
                    raise _not_found(str(item_id)[:80], param="input", what="Item") from None
            output = records[response_id].response.get("output") or []
            index = int(place)
            if index >= len(output) or output[index].get("id") != item_id:
                raise _not_found(str(item_id)[:80], param="input", what="Item")
            resolved.append(output[index])
        return {**payload, "input": resolved}

    async def _stored(self, response_id: str, owner: str, param: str) -> StoredResponse:
        """A stored response a request refers to; a record still being written is waited for."""
        if not self._state.enabled:
            raise RelayError(
                ErrorCode.CONVERSATIONS_DISABLED,
                f"{param} refers to a stored response, but responses are not stored here "
                "(CONVERSATIONS_TABLE is not set): send the earlier output items in input instead",
                extra={"param": param},
            )
        store = self._state.responses
        for attempt in range(PENDING_READS + 1):
            record = await _state_call(store.get(response_id, owner), param=param)
            if record is not None:
                return record
            if attempt < PENDING_READS:
                await asyncio.sleep(PENDING_INTERVAL)
        raise _not_found(response_id, param=param)

    def _keeper(
        self, response_id: str, wire: ResponsesEvents, asked: ResponsesRequest, owner: str
    ) -> Callable[[Outcome], Awaitable[None]]:
        """The completion step that stores the response and the conversation it ends."""
        store, telemetry = self._state.responses, self._telemetry

        async def keep(outcome: Outcome) -> None:
            """Packed before the first wait, so a response not streamed already says whether it
            was kept when its body is written; a failed write fails this step, which the
            bookkeeping reports (``stored_response``)."""
            response = wire.response
            if response is None:
                return
            messages = list(asked.chat.messages[asked.instructions :])
            if wire.turn is not None:
                messages.append(wire.turn)
            body = pack(StoredResponse(response_id, response, messages))
            if too_large(body):
                response["store"] = False
                telemetry.response_not_stored(response_id, len(body))
            await store.put(response_id, body, owner)

        return keep


def _not_found(response_id: str, *, param: str | None = None, what: str = "Response") -> RelayError:
    extra = {"param": param} if param else None
    return RelayError(
        ErrorCode.NOT_FOUND, f"{what} with id {response_id[:80]!r} not found.", extra=extra
    )


def _is_reference(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "item_reference"


async def _state_call(awaitable: Any, *, param: str | None) -> Any:
    try:
        return await awaitable
    except RelayError:
        raise
    except ResponseTooLarge as error:
        raise RelayError(
            ErrorCode.INVALID_PARAMETER,
            f"response {error.response_id} was too large to store; send the conversation's "
            "items with store: false instead",
            extra={"param": param} if param else None,
        ) from None
    except Exception:
        raise RelayError(ErrorCode.STATE_UNAVAILABLE, "the state store is unavailable") from None
