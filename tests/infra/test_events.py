"""events/*.json are function-URL events (payload format 2.0) as Lambda delivers them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from .conftest import ROOT

EVENTS_DIR = ROOT / "events"
EVENT_FILES = sorted(EVENTS_DIR.glob("*.json"))
EXPECTED = {"get-chat", "post-chat", "reconnect", "bad-request", "get-page"}


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return event


def test_the_documented_events_exist() -> None:
    assert {path.stem for path in EVENT_FILES} >= EXPECTED


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.stem)
def test_payload_format_2(path: Path) -> None:
    event = json.loads(path.read_text(encoding="utf-8"))
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"].startswith("/")
    assert isinstance(event["rawQueryString"], str)
    assert isinstance(event["isBase64Encoded"], bool)

    headers = event["headers"]
    assert headers, "a browser always sends headers"
    assert all(name == name.lower() for name in headers), "function URLs lower-case header names"
    assert all(isinstance(value, str) for value in headers.values())

    context = event["requestContext"]
    http = context["http"]
    assert http["method"] in {"GET", "POST"}
    assert http["path"] == event["rawPath"]
    assert http["protocol"].startswith("HTTP/")
    assert http["sourceIp"] == headers["x-forwarded-for"]
    assert http["userAgent"] == headers["user-agent"]
    assert context["domainName"] == headers["host"]
    assert context["domainName"].startswith(context["domainPrefix"] + ".lambda-url.")
    assert context["domainName"].endswith(".on.aws")
    assert context["requestId"]
    assert context["routeKey"] == context["stage"] == "$default"
    assert isinstance(context["timeEpoch"], int) and context["timeEpoch"] > 1_600_000_000_000
    assert isinstance(context["time"], str)

    # Lambda leaves out queryStringParameters when there is no query, and body when there is none.
    if event["rawQueryString"]:
        expected = dict(parse_qsl(event["rawQueryString"], keep_blank_values=True))
        assert event["queryStringParameters"] == expected
    else:
        assert "queryStringParameters" not in event
    if http["method"] == "GET":
        assert "body" not in event
    else:
        assert isinstance(event["body"], str)
        if not event["isBase64Encoded"]:
            assert headers["content-length"] == str(len(event["body"].encode("utf-8")))


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: p.stem)
def test_no_access_token(path: Path) -> None:
    # Local runs set REQUIRE_ACCESS_TOKEN=false; a token in a committed file would be a leak.
    event = json.loads(path.read_text(encoding="utf-8"))
    assert "authorization" not in event["headers"]
    assert "token" not in event["rawQueryString"].lower()
    assert "cookies" not in event


def test_get_chat() -> None:
    event = load("get-chat")
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["rawPath"] == "/chat"
    assert event["queryStringParameters"] == {"q": "Hello"}
    assert event["headers"]["accept"] == "text/event-stream"


def test_post_chat() -> None:
    event = load("post-chat")
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["rawPath"] == "/chat"
    assert event["headers"]["content-type"] == "application/json"
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == {
        "messages": [{"role": "user", "content": "Hello"}],
        "model": "glm-4-flash",
    }


def test_reconnect_resumes_after_event_3() -> None:
    event = load("reconnect")
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["queryStringParameters"] == {"q": "Hello"}
    # Event ids are "<request-id>:<n>"; the browser sends back the last one it saw.
    request_id, _, n = event["headers"]["last-event-id"].rpartition(":")
    assert request_id and n == "3"
    assert request_id == load("get-chat")["requestContext"]["requestId"]
    assert request_id != event["requestContext"]["requestId"]


def test_bad_request_body_is_not_json() -> None:
    event = load("bad-request")
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["headers"]["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(event["body"])


def test_get_page() -> None:
    event = load("get-page")
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["rawPath"] == "/"
    assert "text/html" in event["headers"]["accept"]


def test_request_ids_are_distinct() -> None:
    ids = [json.loads(p.read_text())["requestContext"]["requestId"] for p in EVENT_FILES]
    assert len(set(ids)) == len(ids)
