"""Conversations: who owns one, and every turn asked in it, so a follow-up carries its context.

Items (see ``glm_relay.state`` for the whole table):

- ``pk=CONV#<id>, sk=META``: ``owner`` (token ``sub``), ``created_at``, ``updated_at``,
  ``turn_count`` (the last turn number handed out), ``expires_at``.
- ``pk=CONV#<id>, sk=TURN#<8-digit n>``: ``question``, ``answer``, ``status``, ``model``,
  ``created_at``, ``expires_at``, and when known ``finish_reason``, ``error_code``, ``usage``
  (JSON text), ``truncated``.

Retention is per item: a turn expires ``ttl_days`` after it was written, the meta item
``ttl_days`` after the last turn. DynamoDB deletes expired items lazily, so reads skip items whose
``expires_at`` has passed. An idle conversation therefore loses its oldest turns first, exactly as
the prompt budget would drop them.

Turn numbers come from an atomic ``ADD`` on the meta item, which also checks ownership, so two
answers finishing at once get distinct numbers and nobody can append to someone else's thread.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any

from glm_relay.state.dynamo import (
    META_SK,
    TURN_PREFIX,
    ConditionFailed,
    ExpiringItems,
    Item,
    conversation_pk,
    get_n,
    get_s,
    key,
    n,
    s,
    turn_sk,
)

STATUSES = frozenset({"complete", "error", "stopped"})
MAX_TEXT_BYTES = 150_000
"""Per question and per answer: keeps a turn well under DynamoDB's 400 KB item limit."""

_ID_RE = re.compile(r"[0-9a-f]{32}")
_PAGE = 25


class ConversationNotFound(Exception):
    """No such conversation (never created, malformed id, or expired)."""


class ConversationForbidden(Exception):
    """The conversation exists but belongs to another user."""


class ConversationStore(ExpiringItems):
    """Conversations and their turns in the shared single table."""

    async def create(self, owner: str) -> str:
        """Start a conversation owned by ``owner``; returns its id (32 lowercase hex digits)."""
        _require_owner(owner)
        conversation_id = os.urandom(16).hex()
        now = int(self._clock())
        await self._table.call(
            "put_item",
            Item={
                **key(conversation_pk(conversation_id), META_SK),
                **self._owned(owner, now),
                "updated_at": n(now),
                "turn_count": n(0),
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        return conversation_id

    async def load_for_prompt(
        self, conversation_id: str, owner: str, *, budget_chars: int
    ) -> list[dict[str, str]]:
        """Earlier turns as chat messages, oldest first, trimmed to ``budget_chars`` of content.

        Whole exchanges are dropped from the oldest end; the first exchange that does not fit stops
        the walk, so what remains is always a contiguous, most recent stretch. A turn that did not
        complete contributes its question only: a partial answer would read to the model as
        something it said in full. An empty answer is left out too.
        """
        if budget_chars < 0:
            raise ValueError("budget_chars must not be negative")
        await self._meta(conversation_id, owner)
        newest_first: list[list[dict[str, str]]] = []
        used = 0
        async for turn in self._turns(
            conversation_id,
            newest_first=True,
            projection="question, answer, #status, expires_at",
        ):
            messages = _prompt_messages(turn)
            size = sum(len(m["content"]) for m in messages)
            if used + size > budget_chars:
                break
            used += size
            newest_first.append(messages)
        return [m for exchange in reversed(newest_first) for m in exchange]

    async def append_turn(
        self,
        conversation_id: str,
        owner: str,
        *,
        question: str,
        answer: str,
        status: str,
        usage: dict[str, Any] | None,
        model: str,
        finish_reason: str | None,
        error_code: str | None = None,
    ) -> None:
        """Record one finished stream, whatever way it finished.

        ``status`` is ``complete``, ``error`` or ``stopped``; only ``complete`` answers are
        replayed into later prompts. Text over ``MAX_TEXT_BYTES`` is cut and ``truncated`` set.
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, not {status!r}")
        _require_owner(owner)
        if not _ID_RE.fullmatch(conversation_id):
            raise ConversationNotFound(conversation_id)
        now = int(self._clock())
        expires_at = now + self._ttl
        try:
            result = await self._table.call(
                "update_item",
                Key=key(conversation_pk(conversation_id), META_SK),
                UpdateExpression="SET updated_at = :now, expires_at = :exp ADD turn_count :one",
                ConditionExpression="#owner = :owner AND expires_at > :now",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={
                    ":now": n(now),
                    ":exp": n(expires_at),
                    ":one": n(1),
                    ":owner": s(owner),
                },
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as failed:
            meta = failed.item
            if meta is None:
                meta = await self._get_meta(conversation_id)
            self._check(conversation_id, owner, meta, now)
            raise ConversationNotFound(conversation_id) from None
        number = get_n(result["Attributes"], "turn_count")

        question, cut_q = _cap(question)
        answer, cut_a = _cap(answer)
        item: Item = {
            **key(conversation_pk(conversation_id), turn_sk(number)),
            "question": s(question),
            "answer": s(answer),
            "status": s(status),
            "model": s(model),
            "created_at": n(now),
            "expires_at": n(expires_at),
        }
        if finish_reason is not None:
            item["finish_reason"] = s(finish_reason)
        if error_code is not None:
            item["error_code"] = s(error_code)
        if usage is not None:
            item["usage"] = s(json.dumps(usage, separators=(",", ":")))
        if cut_q or cut_a:
            item["truncated"] = {"BOOL": True}
        await self._table.call("put_item", Item=item)

    async def history(self, conversation_id: str, owner: str) -> dict[str, Any]:
        """The whole conversation for display: id, owner, created_at and every turn, oldest first.

        Unlike :meth:`load_for_prompt` this shows incomplete turns with their partial answers,
        marked by ``status``.
        """
        meta = await self._meta(conversation_id, owner)
        turns = [_public_turn(t) async for t in self._turns(conversation_id, newest_first=False)]
        return {
            "id": conversation_id,
            "owner": owner,
            "created_at": get_n(meta, "created_at"),
            "turns": turns,
        }

    async def _meta(self, conversation_id: str, owner: str) -> Item:
        """The meta item, after checking it exists, is live and belongs to ``owner``."""
        _require_owner(owner)
        if not _ID_RE.fullmatch(conversation_id):
            raise ConversationNotFound(conversation_id)
        meta = await self._get_meta(conversation_id)
        return self._check(conversation_id, owner, meta, int(self._clock()))

    async def _get_meta(self, conversation_id: str) -> Item | None:
        result = await self._table.call(
            "get_item", Key=key(conversation_pk(conversation_id), META_SK), ConsistentRead=True
        )
        item: Item | None = result.get("Item")
        return item

    @staticmethod
    def _check(conversation_id: str, owner: str, meta: Item | None, now: int) -> Item:
        if meta is None or get_n(meta, "expires_at") <= now:
            raise ConversationNotFound(conversation_id)
        if get_s(meta, "owner") != owner:
            raise ConversationForbidden(conversation_id)
        return meta

    async def _turns(
        self, conversation_id: str, *, newest_first: bool, projection: str | None = None
    ) -> AsyncIterator[Item]:
        """Live turn items in order, fetched a page at a time so an early stop reads less."""
        params: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :turn)",
            "ExpressionAttributeValues": {
                ":pk": s(conversation_pk(conversation_id)),
                ":turn": s(TURN_PREFIX),
            },
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }
        if projection is not None:
            params["ProjectionExpression"] = projection
            params["ExpressionAttributeNames"] = {"#status": "status"}
        if newest_first:
            params["Limit"] = _PAGE
        now = int(self._clock())
        while True:
            page = await self._table.call("query", **params)
            for item in page.get("Items", []):
                if get_n(item, "expires_at") > now:
                    yield item
            start = page.get("LastEvaluatedKey")
            if not start:
                return
            params["ExclusiveStartKey"] = start


def _require_owner(owner: str) -> None:
    if not owner:
        raise ValueError("owner is empty")


def _cap(text: str) -> tuple[str, bool]:
    """``text`` cut to ``MAX_TEXT_BYTES`` of UTF-8 (on a character boundary), and whether it was."""
    raw = text.encode()
    if len(raw) <= MAX_TEXT_BYTES:
        return text, False
    return raw[:MAX_TEXT_BYTES].decode(errors="ignore"), True


def _prompt_messages(turn: Item) -> list[dict[str, str]]:
    messages = [{"role": "user", "content": get_s(turn, "question") or ""}]
    answer = get_s(turn, "answer") or ""
    if get_s(turn, "status") == "complete" and answer:
        messages.append({"role": "assistant", "content": answer})
    return messages


def _public_turn(turn: Item) -> dict[str, Any]:
    usage = get_s(turn, "usage")
    return {
        "question": get_s(turn, "question") or "",
        "answer": get_s(turn, "answer") or "",
        "status": get_s(turn, "status"),
        "usage": json.loads(usage) if usage is not None else None,
        "model": get_s(turn, "model"),
        "finish_reason": get_s(turn, "finish_reason"),
        "error_code": get_s(turn, "error_code"),
        "created_at": get_n(turn, "created_at"),
    }
