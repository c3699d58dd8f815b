"""events/*.json are function-URL events (payload format 2.0) as Lambda delivers them;
events/api-gateway/*.json are the REST API proxy events (payload format 1.0) that API Gateway's
streaming integration delivers for the same requests."""

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
REST_DIR = EVENTS_DIR / "api-gateway"
REST_FILES = sorted(REST_DIR.glob("*.json"))
REST_EXPECTED = {"get-chat", "post-chat-completions"}


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


# --- API Gateway REST proxy events (payload format 1.0) -------------------------------------------


def load_rest(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((REST_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return event


def test_the_documented_rest_events_exist() -> None:
    assert {path.stem for path in REST_FILES} >= REST_EXPECTED


@pytest.mark.parametrize("path", REST_FILES, ids=lambda p: p.stem)
def test_payload_format_1(path: Path) -> None:
    event = json.loads(path.read_text(encoding="utf-8"))
    # What tells the two formats apart: 1.0 has httpMethod and path at the top, and no version,
    # rawPath, rawQueryString or requestContext.http.
    assert "version" not in event and "rawPath" not in event and "rawQueryString" not in event
    assert "http" not in event["requestContext"] and "cookies" not in event
    assert event["httpMethod"] in {"GET", "POST"}
    assert event["path"].startswith("/")
    assert isinstance(event["isBase64Encoded"], bool)

    # Header names keep the case the client sent; multiValueHeaders holds every value.
    headers, multi = event["headers"], event["multiValueHeaders"]
    assert {name: [value] for name, value in headers.items()} == multi
    assert any(name != name.lower() for name in headers), "REST APIs do not lower-case names"
    host = headers["Host"]

    # Query: null when there is none (not {}); otherwise both maps, values URL-decoded.
    query, multi_query = event["queryStringParameters"], event["multiValueQueryStringParameters"]
    assert (query is None) == (multi_query is None)
    if query is not None:
        assert {name: [value] for name, value in query.items()} == multi_query

    # The route: every path reaches the function through /{proxy+}.
    assert event["resource"] == "/{proxy+}"
    assert event["pathParameters"] == {"proxy": event["path"].removeprefix("/")}

    context = event["requestContext"]
    assert context["httpMethod"] == event["httpMethod"]
    assert context["resourcePath"] == event["resource"]
    # requestContext.path has the stage in front; the top-level path does not.
    assert context["path"] == f"/{context['stage']}{event['path']}"
    assert context["stage"] == "api"  # the template's StageName
    assert (
        context["domainName"] == host == f"{context['apiId']}.execute-api.us-east-1.amazonaws.com"
    )
    assert context["domainPrefix"] == context["apiId"]
    assert context["identity"]["sourceIp"] == headers["X-Forwarded-For"]
    assert context["identity"]["userAgent"] == headers["User-Agent"]
    assert context["protocol"].startswith("HTTP/")
    assert context["requestId"] and context["extendedRequestId"]
    assert isinstance(context["requestTimeEpoch"], int)
    assert context["requestTimeEpoch"] > 1_600_000_000_000

    # Body: null for a GET (the key is there, unlike payload 2.0).
    if event["httpMethod"] == "GET":
        assert event["body"] is None
    else:
        assert isinstance(event["body"], str) and not event["isBase64Encoded"]
        assert headers["Content-Length"] == str(len(event["body"].encode("utf-8")))


@pytest.mark.parametrize("path", REST_FILES, ids=lambda p: p.stem)
def test_rest_events_carry_no_access_token(path: Path) -> None:
    event = json.loads(path.read_text(encoding="utf-8"))
    assert "authorization" not in {name.lower() for name in event["headers"]}
    assert "token" not in json.dumps(event["queryStringParameters"]).lower()


def test_rest_get_chat_is_the_function_url_get_chat() -> None:
    rest, url = load_rest("get-chat"), load("get-chat")
    assert rest["httpMethod"] == url["requestContext"]["http"]["method"] == "GET"
    assert rest["path"] == url["rawPath"] == "/chat"
    assert rest["queryStringParameters"] == url["queryStringParameters"] == {"q": "Hello"}
    assert rest["headers"]["Accept"] == url["headers"]["accept"] == "text/event-stream"
    assert (
        rest["requestContext"]["identity"]["sourceIp"] == url["requestContext"]["http"]["sourceIp"]
    )


def test_rest_post_chat_completions_streams_openai_style() -> None:
    event = load_rest("post-chat-completions")
    assert event["httpMethod"] == "POST"
    assert event["path"] == "/v1/chat/completions"
    assert event["headers"]["Content-Type"] == "application/json"
    assert json.loads(event["body"]) == {
        "model": "glm-4-flash",
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": True,
    }


def test_rest_request_ids_are_distinct_from_every_other_event() -> None:
    ids = [
        json.loads(p.read_text())["requestContext"]["requestId"] for p in EVENT_FILES + REST_FILES
    ]
    assert len(set(ids)) == len(ids)
