"""Conversations and per-user quotas through the function, with DynamoDB in moto."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import httpx
import pytest

from devtools.stack import DEV_ACCESS_TOKEN_SECRET, DevStack
from glm_relay.access import TokenLimits, mint_access_token
from mock_upstream.answer import expected_chunks
from tests.support.sse_client import StreamResult, parse_frames, read_stream
from tests.support.upstream import upstream_bodies

pytestmark = pytest.mark.usefixtures("upstream_log")


def token_for(sub: str, **limits: int) -> str:
    return mint_access_token(
        sub, 600, DEV_ACCESS_TOKEN_SECRET, limits=TokenLimits(**limits) if limits else None
    )


def ask(
    stack: DevStack, client: httpx.Client, question: str, token: str, conversation: str
) -> StreamResult:
    url = f"{stack.url}/chat?q={quote(question)}&conversation={conversation}&access_token={token}"
    return read_stream(client, "GET", url)


def test_follow_up_questions_reach_the_upstream_with_the_earlier_turns_in_order(
    stack, client
) -> None:
    token = token_for("carol")
    first = ask(stack, client, "First question", token, "new")
    conversation = first.events[0].json["conversation_id"]
    second = ask(stack, client, "Second question", token, conversation)
    third = ask(stack, client, "Third question", token, conversation)

    assert first.terminal.event == second.terminal.event == third.terminal.event == "done"
    assert second.events[0].json["conversation_id"] == conversation
    bodies = upstream_bodies(stack, client)
    assert bodies[2]["messages"] == [
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "Second question"},
        {"role": "assistant", "content": second.text},
        {"role": "user", "content": "Third question"},
    ]
    assert third.text == "".join(expected_chunks(bodies[2]))


def test_history_is_returned_to_its_owner_only(stack, client) -> None:
    owner, stranger = token_for("dave"), token_for("erin")
    answer = ask(stack, client, "Remember me", owner, "new")
    conversation = answer.events[0].json["conversation_id"]

    mine = client.get(
        f"{stack.url}/conversations/{conversation}", headers={"Authorization": f"Bearer {owner}"}
    )
    theirs = client.get(
        f"{stack.url}/conversations/{conversation}",
        headers={"Authorization": f"Bearer {stranger}"},
    )

    assert mine.status_code == 200
    turn = mine.json()["turns"][0]
    assert (turn["question"], turn["answer"], turn["status"]) == (
        "Remember me",
        answer.text,
        "complete",
    )
    assert turn["usage"] == answer.terminal.json["usage"]
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "conversation_not_found"
    assert ask(stack, client, "let me in", stranger, conversation).terminal.json["code"] == (
        "conversation_not_found"
    )


def test_a_failed_answer_is_saved_marked_as_failed_and_not_replayed_as_an_answer(
    stack, client
) -> None:
    token = token_for("frank")
    ok = ask(stack, client, "Fine question", token, "new")
    conversation = ok.events[0].json["conversation_id"]
    broken = ask(stack, client, "Broken one #fault=drop", token, conversation)
    ask(stack, client, "After the failure", token, conversation)

    assert broken.terminal.json["code"] == "upstream_disconnected"
    history = client.get(
        f"{stack.url}/conversations/{conversation}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert [t["status"] for t in history["turns"]] == ["complete", "error", "complete"]
    assert history["turns"][1]["error_code"] == "upstream_disconnected"
    replayed = upstream_bodies(stack, client)[-1]["messages"]
    assert {"role": "assistant", "content": broken.text} not in replayed
    assert {"role": "assistant", "content": ok.text} in replayed


async def _stream_all(urls: list[str]) -> list[StreamResult]:
    async def one(client: httpx.AsyncClient, url: str) -> StreamResult:
        async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as r:
            result = StreamResult(r.status_code, r.headers)
            buffer = b""
            async for chunk in r.aiter_raw():
                buffer = parse_frames(buffer + chunk, result, 0.0)
            return result

    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await asyncio.gather(*(one(client, url) for url in urls))


def test_fifty_concurrent_requests_admit_exactly_the_daily_allowance(stack, client) -> None:
    token = token_for("grace", requests_per_day=10)
    urls = [f"{stack.url}/chat?q=race+{i}+%23chunks%3D3&access_token={token}" for i in range(50)]

    results = asyncio.run(_stream_all(urls))

    terminals = [r.terminal for r in results]
    done = [t for t in terminals if t.event == "done"]
    refused = [t.json for t in terminals if t.event == "error"]
    assert len(done) == 10
    assert len(refused) == 40 and {e["code"] for e in refused} == {"quota_exceeded"}
    assert all(e["resets_at"] > 0 and e["retryable"] for e in refused)
    # The upstream requests start while the quota decides (see ChatService.start): a refused
    # one is closed as soon as its refusal arrives, so the upstream may have seen up to 50, but
    # none was relayed.
    records = client.get(f"{stack.upstream.origin}/_mock/requests").json()["requests"]
    assert 10 <= len(records) <= 50
    assert sum(r["outcome"] == "completed" for r in records) >= 10


def test_token_usage_is_reconciled_with_what_the_upstream_reported(stack, client) -> None:
    answers = [
        ask(stack, client, f"count me {i} #chunks=7", token_for("heidi"), "") for i in range(3)
    ]
    used = sum(a.terminal.json["usage"]["total_tokens"] for a in answers)
    # The next request reserves max_tokens; with exactly `used` + a little allowed, it is refused
    # only if the earlier reservations were not given back.
    tight = token_for("heidi", tokens_per_day=used + 4096 + 200)

    result = ask(stack, client, "one more", tight, "")

    assert result.terminal.event == "done"
    over = token_for("heidi", tokens_per_day=used + 10)
    refused = ask(stack, client, "too much", over, "")
    assert refused.terminal.json["code"] == "quota_exceeded"
    assert "tokens" in refused.terminal.json["message"]


def test_a_failed_save_after_the_answer_still_ends_the_stream_cleanly(stack, client) -> None:
    token = token_for("ivan")
    first = ask(stack, client, "Start", token, "new")
    conversation = first.events[0].json["conversation_id"]
    url = (
        f"{stack.url}/chat?q=slow+%23chunks%3D4+%23delay%3D150"
        f"&conversation={conversation}&access_token={token}"
    )

    with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
        chunks = response.iter_raw()
        received = next(chunks)
        # The conversation disappears while the answer streams: saving the turn must fail.
        ddb = stack.moto.client("dynamodb")
        ddb.delete_item(
            TableName=stack.names["table"],
            Key={"pk": {"S": f"CONV#{conversation}"}, "sk": {"S": "META"}},
        )
        for chunk in chunks:
            received += chunk

    assert received.rstrip().endswith(b"}") and b"event: done" in received
    assert received.count(b"event: done") == 1 and b"event: error" not in received
