"""Web search through the local function URL: ``/chat``'s switch and its ``search`` events, the
``web_search`` list on ``/v1`` where the upstream put it, and the operator's settings."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from glm_relay.chat.pieces import SearchPiece, TextPiece
from glm_relay.chat.search import RESULT_KEYS
from glm_relay.upstream.stream import pieces_of_chunk
from glm_relay.web.openai_wire import OpenAIChunks
from mock_upstream.answer import expected_chunks, expected_web_search
from tests.hardening.support import mint, serving, variant_app
from tests.support.sse_client import StreamResult, read_stream
from tests.support.upstream import DEFAULT_SEARCH_TOOL, upstream_bodies

pytestmark = pytest.mark.usefixtures("upstream_log")
# Its own caller, with no practical quota: the session's developer token has a daily one.
TOKEN = mint("web-search-tests")


def get(url: str, token: str, client: httpx.Client, question: str, **params: str) -> StreamResult:
    query = "&".join(f"{k}={quote(v)}" for k, v in {"q": question, **params}.items())
    return read_stream(client, "GET", f"{url}/chat?{query}&access_token={token}")


def as_event(results: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    return [{key: str(r.get(key) or "") for key in RESULT_KEYS} for r in results or []]


def test_get_with_web_search_sends_the_tool_and_the_sources_come_first(stack, client) -> None:
    result = get(stack.url, TOKEN, client, "Latest river news #chunks=5", web_search="true")

    (body,) = upstream_bodies(stack, client)
    assert body["tools"] == [DEFAULT_SEARCH_TOOL]
    assert body["tool_choice"] == "auto"
    assert result.names[:3] == ["meta", "search", "chat"]
    (search,) = [e.json for e in result.events if e.event == "search"]
    assert search["results"] == as_event(expected_web_search(body))
    assert len(search["results"]) == 5
    first = search["results"][0]
    assert first["link"].startswith("https://search.example/1?q=")
    assert set(first) == set(RESULT_KEYS)
    assert result.text == "".join(expected_chunks(body))
    assert result.text.endswith(" [ref_1] [ref_2] [ref_3]")
    assert result.terminal.event == "done"


def test_post_web_search_sources_may_arrive_while_the_answer_streams(stack, client) -> None:
    body = {
        "messages": [{"role": "user", "content": "Mountains today #chunks=6 #search_at=3"}],
        "web_search": True,
    }
    result = read_stream(
        client,
        "POST",
        f"{stack.url}/chat",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert result.names[:6] == ["meta", "chat", "chat", "chat", "search", "chat"]
    (upstream,) = upstream_bodies(stack, client)
    assert result.events[4].json["results"] == as_event(expected_web_search(upstream))


@pytest.mark.parametrize("value", ["false", "0", "off"])
def test_get_without_web_search_sends_no_tool(stack, client, value) -> None:
    result = get(stack.url, TOKEN, client, "Hello #chunks=2", web_search=value)

    (body,) = upstream_bodies(stack, client)
    assert "tools" not in body
    assert "search" not in result.names


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"web_search": "maybe"}, "invalid_parameter"),
        ({"web_search": True, "tool_choice": "none"}, "invalid_parameter"),
        (
            {"web_search": True, "tools": [{"type": "web_search", "web_search": {}}]},
            "invalid_parameter",
        ),
    ],
)
def test_post_web_search_mistakes_are_refused(stack, client, fields, code) -> None:
    body = {"messages": [{"role": "user", "content": "Hello"}], **fields}
    response = client.post(
        f"{stack.url}/chat", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert upstream_bodies(stack, client) == []


def test_v1_stream_puts_the_list_on_the_chunk_it_came_on(stack, client) -> None:
    tool = {"type": "web_search", "web_search": {"count": 3}}
    chunks = []
    for at in (0, 99):  # the first data frame; past the end: the finish chunk
        request = {
            "model": "glm-4-flash",
            "stream": True,
            "messages": [{"role": "user", "content": f"Lakes #chunks=4 #search_at={at}"}],
            "tools": [tool],
        }
        with client.stream(
            "POST",
            f"{stack.url}/v1/chat/completions",
            json=request,
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response:
            lines = [line for line in response.iter_lines() if line.startswith("data: {")]
        chunks.append([json.loads(line[6:]) for line in lines])

    first, last = upstream_bodies(stack, client)
    expected = expected_web_search(first)
    assert expected is not None
    carrying = [c for c in chunks[0] if "web_search" in c]
    assert len(carrying) == 1
    assert carrying[0]["web_search"] == expected
    assert carrying[0]["choices"][0]["delta"] == {"content": expected_chunks(first)[0]}
    (on_finish,) = [c for c in chunks[1] if "web_search" in c]
    assert on_finish["choices"][0]["finish_reason"] == "stop"
    assert on_finish["web_search"] == expected_web_search(last)


def test_v1_a_chunk_with_only_the_list_becomes_a_chunk_of_its_own() -> None:
    wire = OpenAIChunks("chatcmpl-1", "glm-4-flash", 1, include_usage=False)
    results = [{"title": "t", "link": "https://a.example/"}]
    alone: list[Any] = []
    pieces_of_chunk(
        {"choices": [{"index": 0, "delta": {"role": "assistant"}}], "web_search": results}, alone
    )
    riding: list[Any] = []
    pieces_of_chunk(
        {"choices": [{"index": 0, "delta": {"content": "Hi"}}], "web_search": results}, riding
    )

    assert alone == [SearchPiece(results, alone=True)]
    assert riding == [SearchPiece(results, alone=False), TextPiece("Hi")]
    own = json.loads(wire.piece(alone[0])[6:])
    assert own["web_search"] == results
    assert own["choices"] == [{"index": 0, "delta": {}, "finish_reason": None}]
    assert wire.piece(riding[0]) == b""
    text = json.loads(wire.piece(riding[1])[6:])
    assert (text["web_search"], text["choices"][0]["delta"]) == (results, {"content": "Hi"})
    assert "web_search" not in json.loads(wire.piece(TextPiece("!"))[6:])


def test_settings_turn_search_off_and_set_its_options(stack, client) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    off = variant_app(stack, web_search=False)
    tuned = variant_app(stack, web_search_options={"count": 2, "search_engine": "search_pro"})
    with serving(off) as off_url, serving(tuned) as tuned_url:
        refused_get = get(off_url, TOKEN, client, "Hello", web_search="1")
        refused_post = client.post(
            f"{off_url}/chat",
            json={"messages": [{"role": "user", "content": "Hi"}], "web_search": True},
            headers=headers,
        )
        refused_v1 = client.post(
            f"{off_url}/v1/chat/completions",
            json={
                "model": "glm-4-flash",
                "messages": [{"role": "user", "content": "Hi"}],
                "tools": [{"type": "web_search", "web_search": {}}],
            },
            headers=headers,
        )
        assert upstream_bodies(stack, client) == []
        tuned_result = get(tuned_url, TOKEN, client, "Hello #chunks=2", web_search="on")

    assert refused_get.names == ["error"]
    assert refused_get.terminal.json["code"] == "web_search_disabled"
    for response in (refused_post, refused_v1):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "web_search_disabled"
    (body,) = upstream_bodies(stack, client)
    assert body["tools"] == [
        {
            "type": "web_search",
            "web_search": {
                "enable": True,
                "search_engine": "search_pro",
                "search_result": True,
                "count": 2,
            },
        }
    ]
    (search,) = [e.json for e in tuned_result.events if e.event == "search"]
    assert len(search["results"]) == 2
