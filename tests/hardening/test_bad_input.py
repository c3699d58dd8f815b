"""Malformed and hostile requests: each gets its own status and ``error.code``, and none of them
costs an upstream request.

Requests go over a raw socket to the local function URL, so paths, bodies and headers arrive
exactly as written (no client-side normalisation). The fake upstream's log is emptied before each
case and must still be empty after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest

from devtools.events import function_url_event
from devtools.local_url import FunctionUrlConfig
from devtools.stack import DEV_ACCESS_TOKEN_SECRET, DevStack
from glm_relay.access import mint_access_token
from glm_relay.runtime import InvocationContext, now_ms

from .support import (
    RawResponse,
    chat_records,
    clear_upstream,
    frames_of,
    mint,
    raw_request,
    serving,
    variant_app,
)

pytestmark = pytest.mark.usefixtures("upstream_log")

JSON_TYPE = "application/json; charset=utf-8"
SSE = {"Accept": "text/event-stream"}
USER = [{"role": "user", "content": "hello"}]
# The input limits, small and explicit: cases marked ``limited`` go to a relay configured so
# (the defaults are sized for coding agents: 6 MB, 800,000 characters, 2,000 messages).
MAX_BODY = 64 * 1024
MAX_PROMPT = 32_000
MAX_MESSAGES = 50
LIMITS = {"max_body_bytes": MAX_BODY, "max_prompt_chars": MAX_PROMPT, "max_messages": MAX_MESSAGES}
WWW_AUTHENTICATE = 'Bearer realm="glm-relay"'
NAMED_G = {"type": "function", "function": {"name": "g"}}
FUNCTION_TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
# A caller of its own, so that a request which does get through counts against nobody else.
TOKEN = mint("hardening-bad-input")


@dataclass(frozen=True)
class Case:
    """One bad request and what the function must answer."""

    id: str
    status: int
    code: str
    method: str = "POST"
    target: str = "/chat"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/json"
    token: bool = True  # send a valid access token (validation runs after authentication)
    allow: str | None = None  # the expected Allow header of a 405
    limited: bool = False  # sent to the relay with the small LIMITS
    marks: tuple[Any, ...] = ()

    def param(self) -> Any:
        return pytest.param(self, id=self.id, marks=self.marks)


def body(**fields: Any) -> bytes:
    """A JSON body: a valid request unless ``fields`` change it."""
    return json.dumps({"messages": USER, **fields}).encode()


def get(target: str, status: int, code: str, id: str, **kwargs: Any) -> Case:
    return Case(id, status, code, method="GET", target=target, content_type=None, **kwargs)


# fmt: off
CASES = [
    # The body: encoding, syntax and shape
    Case("invalid-json", 400, "invalid_json", body=b'{"messages": ['),
    Case("json-trailing-garbage", 400, "invalid_json", body=body() + b" }"),
    Case("empty-body", 400, "invalid_json", body=b""),
    Case("json-array", 400, "invalid_body", body=b'[{"role": "user", "content": "hi"}]'),
    Case("json-string", 400, "invalid_body", body=b'"hello"'),
    Case("json-null", 400, "invalid_body", body=b"null"),
    Case("json-number", 400, "invalid_body", body=b"42"),
    Case(
        "deeply-nested-json", 400, "invalid_json", body=b"[" * 5000 + b"]" * 5000,
    ),
    Case(
        "invalid-utf8-body", 400, "invalid_encoding",
        body=b'{"messages": [{"role": "user", "content": "caf\xe9"}]}',
    ),
    Case(
        "lone-surrogate-escape", 400, "invalid_messages",
        body=b'{"messages": [{"role": "user", "content": "hi \\ud800"}]}',
    ),
    Case(
        "body-too-large", 413, "body_too_large", body=body() + b" " * MAX_BODY, limited=True,
    ),
    Case("text-plain", 415, "unsupported_media_type", body=body(), content_type="text/plain"),
    Case("no-content-type", 415, "unsupported_media_type", body=body(), content_type=None),
    Case(
        "form-encoded", 415, "unsupported_media_type", body=b"q=hello",
        content_type="application/x-www-form-urlencoded",
    ),
    Case(
        "json-lookalike-type", 415, "unsupported_media_type", body=body(),
        content_type="application/json-patch+json",
    ),
    # messages
    Case("messages-missing", 400, "invalid_messages", body=b'{"model": "glm-4-flash"}'),
    Case("messages-empty", 400, "invalid_messages", body=body(messages=[])),
    Case("messages-a-string", 400, "invalid_messages", body=body(messages="hello")),
    Case("messages-an-object", 400, "invalid_messages", body=body(messages=USER[0])),
    Case("message-a-string", 400, "invalid_messages", body=body(messages=["hello"])),
    Case(
        "message-extra-key", 400, "invalid_messages",
        body=body(messages=[{"role": "user", "content": "hi", "name": "x"}]),
    ),
    Case(
        "role-unknown", 400, "invalid_messages",
        body=body(messages=[{"role": "admin", "content": "hi"}]),
    ),
    Case(
        "role-tool", 400, "invalid_messages",
        body=body(messages=[{"role": "tool", "content": "hi"}]),
    ),
    Case(
        "role-a-number", 400, "invalid_messages",
        body=body(messages=[{"role": 1, "content": "hi"}]),
    ),
    Case(
        "role-missing", 400, "invalid_messages", body=body(messages=[{"content": "hi"}])
    ),
    Case(
        "content-a-number", 400, "invalid_messages",
        body=body(messages=[{"role": "user", "content": 7}]),
    ),
    Case(
        "content-an-image-part", 400, "unsupported_content",
        body=body(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
    ),
    Case(
        "content-an-unknown-part", 400, "invalid_messages",
        body=body(messages=[{"role": "user", "content": [{"type": "hologram"}]}]),
    ),
    Case(
        "content-null", 400, "invalid_messages",
        body=body(messages=[{"role": "user", "content": None}]),
    ),
    Case(
        "content-blank", 400, "invalid_messages",
        body=body(messages=[{"role": "user", "content": " \n\t "}]),
    ),
    Case(
        "content-with-nul", 400, "invalid_messages",
        body=body(messages=[{"role": "user", "content": "hi\u0000there"}]),
    ),
    Case(
        "no-user-message", 400, "invalid_messages",
        body=body(messages=[{"role": "system", "content": "Be brief."}]),
    ),
    Case(
        "too-many-messages", 400, "too_many_messages",
        body=body(messages=[{"role": "user", "content": "hi"}] * (MAX_MESSAGES + 1)),
        limited=True,
    ),
    Case(
        "prompt-too-long", 413, "prompt_too_long",
        body=body(messages=[{"role": "user", "content": "x" * (MAX_PROMPT + 1)}]),
        limited=True,
    ),
    Case(
        "prompt-too-long-summed", 413, "prompt_too_long",
        body=body(
            messages=[
                {"role": "system", "content": "s" * (MAX_PROMPT // 2)},
                {"role": "user", "content": "u" * (MAX_PROMPT // 2 + 1)},
            ]
        ),
        limited=True,
    ),
    # other fields
    Case("unknown-field", 400, "unknown_parameter", body=body(stream=True)),
    Case("unknown-field-seed", 400, "unknown_parameter", body=body(seed=7)),
    Case(
        "tools-of-an-unknown-type", 400, "unsupported_parameter",
        body=body(tools=[{"type": "code_interpreter"}]),
    ),
    Case(
        "tool-choice-required-without-tools", 400, "invalid_parameter",
        body=body(tool_choice="required"),
    ),
    Case(
        "tool-choice-naming-an-absent-function", 400, "invalid_parameter",
        body=body(tools=[FUNCTION_TOOL], tool_choice=NAMED_G),
    ),
    Case(
        "tool-choice-allowed-tools", 400, "unsupported_parameter",
        body=body(tools=[FUNCTION_TOOL], tool_choice={"type": "allowed_tools"}),
    ),
    Case(
        "tool-strict-not-a-boolean", 400, "invalid_parameter",
        body=body(tools=[{"type": "function", "function": {"name": "f", "strict": "yes"}}]),
    ),
    Case("stop-five-words", 400, "invalid_parameter", body=body(stop=["a", "b", "c", "d", "e"])),
    Case("thinking-on-a-legacy-model", 400, "unsupported_parameter", body=body(thinking="on")),
    Case("model-a-number", 400, "invalid_parameter", body=body(model=4)),
    Case("model-unknown", 400, "model_not_allowed", body=body(model="gpt-4o")),
    Case("model-case-variant", 400, "model_not_allowed", body=body(model="GLM-4-FLASH")),
    Case("temperature-a-string", 400, "invalid_parameter", body=body(temperature="0.5")),
    Case("temperature-above-two", 400, "invalid_parameter", body=body(temperature=2.01)),
    Case("temperature-negative", 400, "invalid_parameter", body=body(temperature=-0.1)),
    Case("temperature-a-boolean", 400, "invalid_parameter", body=body(temperature=True)),
    Case(
        "temperature-nan-literal", 400, "invalid_parameter",
        body=b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
    ),
    Case(
        "temperature-infinity-literal", 400, "invalid_parameter",
        body=b'{"messages": [{"role": "user", "content": "hi"}], "temperature": Infinity}',
    ),
    Case(
        "temperature-overflowing-exponent", 400, "invalid_parameter",
        body=b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 1e999}',
    ),
    Case("top-p-zero", 400, "invalid_parameter", body=body(top_p=0)),
    Case("top-p-above-one", 400, "invalid_parameter", body=body(top_p=1.01)),
    Case("top-p-a-list", 400, "invalid_parameter", body=body(top_p=[0.5])),
    Case(
        "top-p-negative-infinity-literal", 400, "invalid_parameter",
        body=b'{"messages": [{"role": "user", "content": "hi"}], "top_p": -Infinity}',
    ),
    Case("max-tokens-zero", 400, "invalid_parameter", body=body(max_tokens=0)),
    Case("max-tokens-negative", 400, "invalid_parameter", body=body(max_tokens=-1)),
    Case("max-tokens-over-cap", 400, "invalid_parameter", body=body(max_tokens=4097)),
    Case("max-tokens-a-float", 400, "invalid_parameter", body=body(max_tokens=1.5)),
    Case("max-tokens-a-string", 400, "invalid_parameter", body=body(max_tokens="100")),
    Case("max-tokens-a-boolean", 400, "invalid_parameter", body=body(max_tokens=True)),
    Case("max-tokens-huge", 400, "invalid_parameter", body=body(max_tokens=10**30)),
    Case("conversation-a-number", 400, "invalid_parameter", body=body(conversation=5)),
    # GET /chat without an event-stream Accept: JSON errors with their status
    get("/chat", 400, "missing_prompt", "get-q-missing"),
    get("/chat?q=", 400, "missing_prompt", "get-q-empty"),
    get("/chat?q=%20%09%0A", 400, "missing_prompt", "get-q-blank"),
    get("/chat?model=glm-4-flash", 400, "missing_prompt", "get-only-model"),
    get("/chat?q=hi&stream=true", 400, "unknown_parameter", "get-unknown-parameter"),
    get("/chat?q=hi&Q=hi", 400, "unknown_parameter", "get-parameter-case-variant"),
    get("/chat?q=hi&model=gpt-4o", 400, "model_not_allowed", "get-model-unknown"),
    get("/chat?q=hi&model=glm-4-flash%00", 400, "model_not_allowed", "get-model-with-nul"),
    get("/chat?q=hi&system=", 400, "invalid_parameter", "get-system-empty"),
    get("/chat?q=hi&system=%20%20", 400, "invalid_parameter", "get-system-blank"),
    get(
        f"/chat?q={'x' * (MAX_PROMPT + 1)}", 413, "prompt_too_long", "get-q-too-long",
        limited=True,
    ),
    get(
        f"/chat?q={'x' * (MAX_PROMPT // 2 + 1)}&system={'s' * (MAX_PROMPT // 2)}",
        413, "prompt_too_long", "get-q-and-system-too-long", limited=True,
    ),
    get(
        "/chat?q=hi%00there", 400, "invalid_parameter", "get-q-with-nul",
    ),
    get(
        "/chat?q=hi&system=be%00brief", 400, "invalid_parameter", "get-system-with-nul",
    ),
    get(
        "/chat?q=caf%E9", 400, "invalid_encoding", "get-q-invalid-utf8",
    ),
    # Methods
    Case("delete-chat", 405, "method_not_allowed", method="DELETE", allow="GET, POST"),
    Case("put-chat", 405, "method_not_allowed", method="PUT", body=body(), allow="GET, POST"),
    Case("patch-chat", 405, "method_not_allowed", method="PATCH", body=body(), allow="GET, POST"),
    Case(
        "options-without-preflight", 405, "method_not_allowed", method="OPTIONS",
        allow="GET, POST",
    ),
    Case("post-page", 405, "method_not_allowed", target="/", body=body(), allow="GET, HEAD"),
    Case(
        "post-conversation", 405, "method_not_allowed", target="/conversations/abc",
        body=body(), allow="GET",
    ),
    Case("trace-chat", 405, "method_not_allowed", method="TRACE", allow="GET, POST"),
    # Paths
    get("/nope", 404, "not_found", "unknown-path"),
    get("/chat/", 404, "not_found", "trailing-slash"),
    get("/CHAT?q=hi", 404, "not_found", "path-case-variant"),
    get("/../etc/passwd", 404, "not_found", "traversal-etc-passwd"),
    get("/static/../app.py", 404, "not_found", "traversal-static-app"),
    get("/static/index.html", 404, "not_found", "static-file-by-path"),
    get("//chat?q=hi", 404, "not_found", "double-slash"),
    get("/chat/..?q=hi", 404, "not_found", "chat-dot-dot"),
    get("/chat/%2e%2e/app.py", 404, "not_found", "encoded-dot-dot"),
    get("/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 404, "not_found", "encoded-traversal"),
    get("/chat%00?q=hi", 404, "not_found", "nul-in-path"),
    get("/chat;.js?q=hi", 404, "not_found", "path-parameter"),
    get("/v1/chat/completions/../../chat?q=hi", 404, "not_found", "traversal-into-chat"),
]
# fmt: on


@pytest.fixture(scope="module")
def limited_url(stack: DevStack) -> Iterator[str]:
    """The function with the small input LIMITS, behind its own function URL."""
    with serving(variant_app(stack, **LIMITS), stack.url_config()) as url:
        yield url


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_request_gets_its_status_and_code_and_costs_no_upstream_request(
    case: Case, stack: DevStack, client: httpx.Client, request: pytest.FixtureRequest
) -> None:
    headers = dict(case.headers)
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    if case.token:
        headers["Authorization"] = f"Bearer {TOKEN}"

    url = request.getfixturevalue("limited_url") if case.limited else stack.url
    response = raw_request(url, case.method, case.target, headers=headers, body=case.body)

    assert_json_error(response, case.status, case.code)
    if case.allow is not None:
        assert response.headers["allow"] == case.allow
    assert chat_records(stack, client) == []


def assert_json_error(response: RawResponse, status: int, code: str) -> dict[str, Any]:
    assert (response.status, _code_of(response)) == (status, code), response.body[:300]
    assert response.headers["content-type"] == JSON_TYPE
    error = response.json["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert response.headers.get("x-request-id")
    return dict(error)


def _code_of(response: RawResponse) -> str | None:
    try:
        return str(response.json["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def sse_error(response: RawResponse) -> dict[str, Any]:
    """The one event of an in-band error answer; asserts it is the whole body."""
    assert response.status == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    frames = frames_of(response.body)
    assert len(frames) == 1, frames
    fields = dict(line.split(": ", 1) for line in frames[0].decode().split("\n"))
    assert fields["event"] == "error"
    assert fields["id"] == f"{response.headers['x-request-id']}:1"
    return dict(json.loads(fields["data"]))


# --- the same refusals as a single `error` event, for EventSource ------------------------------


SSE_CASES = [
    ("/chat", "missing_prompt"),
    ("/chat?q=", "missing_prompt"),
    ("/chat?q=hi&debug=1", "unknown_parameter"),
    ("/chat?q=hi&model=glm-99", "model_not_allowed"),
    ("/chat?q=hi&system=", "invalid_parameter"),
    (f"/chat?q={'y' * (MAX_PROMPT + 1)}", "prompt_too_long"),
    ("/nowhere", "not_found"),
]


@pytest.mark.parametrize(("target", "code"), SSE_CASES, ids=[c for _, c in SSE_CASES])
def test_eventsource_gets_a_bad_request_as_one_error_event_with_status_200(
    target: str, code: str, stack: DevStack, client: httpx.Client, limited_url: str
) -> None:
    response = raw_request(
        limited_url, "GET", target, headers={**SSE, "Authorization": f"Bearer {TOKEN}"}
    )

    error = sse_error(response)
    assert error["code"] == code and error["retryable"] is False and error["message"]
    assert chat_records(stack, client) == []


# --- access tokens ------------------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": "glm-relay", "sub": "mallory", "iat": now, "exp": now + 3600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


OTHER_KEY = "a-different-signing-key-of-enough-length-0123456789"


def forged_tokens() -> dict[str, tuple[str, str]]:
    """name -> (token, the message the relay gives for it)."""
    secret = DEV_ACCESS_TOKEN_SECRET
    now = int(time.time())
    return {
        "alg-none": (f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.", "algorithm"),
        "alg-none-with-signature": (
            f"{_b64({'alg': 'none'})}.{_b64(_claims())}.c2lnbmF0dXJl",
            "algorithm",
        ),
        "hs512": (_hs512(_claims(), secret), "algorithm"),
        "rs256-header-hmac-signature": (_hmac_signed({"alg": "RS256"}, _claims()), "algorithm"),
        "other-key": (jwt.encode(_claims(), OTHER_KEY, algorithm="HS256"), "bad signature"),
        "tampered-payload": (_tampered(mint("mallory")), "bad signature"),
        "expired": (
            mint_access_token("mallory", 60, secret, now=now - 3600),
            "token expired",
        ),
        "not-yet-valid": (
            jwt.encode(_claims(nbf=now + 600), secret, algorithm="HS256"),
            "token not yet valid",
        ),
        "wrong-issuer": (jwt.encode(_claims(iss="someone-else"), secret), "wrong issuer"),
        "with-audience": (jwt.encode(_claims(aud="glm-relay"), secret), "audience"),
        "no-exp": (jwt.encode(_claims(exp=None), secret), "missing claim: exp"),
        "exp-a-string": (jwt.encode(_claims(exp="tomorrow"), secret), "invalid claim: exp"),
        "limits-unknown-field": (
            jwt.encode(_claims(limits={"requests_per_day": 5, "admin": 1}), secret),
            "invalid claim: limits",
        ),
        "malformed": ("not-a-token", "malformed token"),
        "two-segments": ("abc.def", "malformed token"),
        "too-large": ("a" * 3000 + "." + "b" * 3000 + ".c", "token too large"),
    }


def _hmac_signed(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A token with any header, HMAC-SHA256 signed with the relay's own key."""
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    digest = hmac.new(DEV_ACCESS_TOKEN_SECRET.encode(), signing_input.encode(), hashlib.sha256)
    signature = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    return f"{signing_input}.{signature}"


def _hs512(claims: dict[str, Any], secret: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the development key is short for SHA-512; that is fine
        return jwt.encode(claims, secret, algorithm="HS512")


def _tampered(token: str) -> str:
    header, _, rest = token.partition(".")
    _, _, signature = rest.partition(".")
    return f"{header}.{_b64(_claims(sub='admin'))}.{signature}"


FORGED = forged_tokens()


@pytest.mark.parametrize("name", list(FORGED))
def test_unusable_access_token_is_refused_with_401_and_www_authenticate(
    name: str, stack: DevStack, client: httpx.Client
) -> None:
    token, message = FORGED[name]
    response = raw_request(
        stack.url,
        "POST",
        "/chat",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        body=body(),
    )

    error = assert_json_error(response, 401, "unauthorized")
    assert message in error["message"]
    assert token not in response.body.decode()
    assert response.headers["www-authenticate"] == WWW_AUTHENTICATE
    assert chat_records(stack, client) == []


@pytest.mark.parametrize(
    ("name", "headers", "query"),
    [
        ("no-token", {}, ""),
        ("empty-bearer", {"Authorization": "Bearer "}, ""),
        ("basic-scheme-only", {"Authorization": "Basic dXNlcjpwYXNz"}, ""),
        ("blank-query-token", {}, "&access_token=%20"),
        ("forged-query-token", {}, "&access_token=" + quote(FORGED["other-key"][0])),
        ("expired-query-token", {}, "&access_token=" + quote(FORGED["expired"][0])),
    ],
)
def test_missing_or_bad_token_on_get_is_refused_with_401(
    name: str, headers: dict[str, str], query: str, stack: DevStack, client: httpx.Client
) -> None:
    response = raw_request(stack.url, "GET", f"/chat?q=hello{query}", headers=headers)

    assert_json_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == WWW_AUTHENTICATE
    assert chat_records(stack, client) == []


def test_eventsource_with_a_forged_token_gets_one_unauthorized_event(
    stack: DevStack, client: httpx.Client
) -> None:
    token = FORGED["alg-none"][0]
    response = raw_request(stack.url, "GET", f"/chat?q=hello&access_token={token}", headers=SSE)

    error = sse_error(response)
    assert error["code"] == "unauthorized" and error["retryable"] is False
    assert chat_records(stack, client) == []


def test_authentication_comes_before_validation(stack: DevStack, client: httpx.Client) -> None:
    # A caller without a token learns nothing about what the relay would accept.
    response = raw_request(
        stack.url, "POST", "/chat", headers={"Content-Type": "text/plain"}, body=b"{"
    )

    assert_json_error(response, 401, "unauthorized")
    assert chat_records(stack, client) == []


# --- origins ------------------------------------------------------------------------------------

GOOD_ORIGIN = "https://good.example"


@pytest.fixture(scope="module")
def strict_origin_url(stack: DevStack) -> Iterator[str]:
    """The function with ALLOWED_ORIGINS set to one page, behind its own function URL."""
    app = variant_app(stack, allowed_origins=(GOOD_ORIGIN,))
    with serving(app, FunctionUrlConfig(allowed_origins=(GOOD_ORIGIN,))) as url:
        yield url


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        "https://good.example.evil.example",
        "http://good.example",
        "https://GOOD.example.",
    ],
)
def test_page_from_a_disallowed_origin_is_refused_with_403(
    origin: str, strict_origin_url: str, stack: DevStack, client: httpx.Client
) -> None:
    response = raw_request(
        strict_origin_url,
        "POST",
        "/chat",
        headers={
            "Origin": origin,
            "Content-Type": "application/json",
            "Authorization": f"Bearer {TOKEN}",
        },
        body=body(),
    )

    assert_json_error(response, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in response.headers
    assert chat_records(stack, client) == []


def test_eventsource_from_a_disallowed_origin_gets_one_error_event(
    strict_origin_url: str, stack: DevStack, client: httpx.Client
) -> None:
    response = raw_request(
        strict_origin_url,
        "GET",
        f"/chat?q=hello&access_token={TOKEN}",
        headers={**SSE, "Origin": "https://evil.example"},
    )

    assert sse_error(response)["code"] == "origin_not_allowed"
    assert chat_records(stack, client) == []


def test_allowed_origin_passes_the_origin_check(
    strict_origin_url: str, stack: DevStack, client: httpx.Client
) -> None:
    # Same relay, the allowed page, a request that fails later: it is the origin that was refused.
    response = raw_request(
        strict_origin_url,
        "GET",
        "/chat",
        headers={"Origin": GOOD_ORIGIN, "Authorization": f"Bearer {TOKEN}"},
    )

    assert_json_error(response, 400, "missing_prompt")
    assert response.headers["access-control-allow-origin"] == GOOD_ORIGIN
    assert chat_records(stack, client) == []


# --- someone else's conversation ------------------------------------------------------------


@pytest.fixture(scope="module")
def alice_conversation(stack: DevStack) -> str:
    """A conversation that belongs to alice (its creation is the one upstream call here)."""
    token = mint("hardening-alice")
    with httpx.Client(timeout=30) as http:
        response = http.get(
            f"{stack.url}/chat",
            params={"q": "Remember this #chunks=2", "conversation": "new"},
            headers={**SSE, "Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200 and "event: done" in response.text
    meta_line = next(line for line in response.text.split("\n") if '"conversation_id"' in line)
    return str(json.loads(meta_line.removeprefix("data: "))["conversation_id"])


@pytest.fixture
def bob() -> str:
    return mint("hardening-bob")


def test_someone_elses_conversation_history_is_not_found(
    alice_conversation: str, bob: str, stack: DevStack, client: httpx.Client
) -> None:
    clear_upstream(stack, client)
    alice = mint("hardening-alice")
    own = client.get(
        f"{stack.url}/conversations/{alice_conversation}",
        headers={"Authorization": f"Bearer {alice}"},
    )
    assert own.status_code == 200

    response = raw_request(
        stack.url,
        "GET",
        f"/conversations/{alice_conversation}",
        headers={"Authorization": f"Bearer {bob}"},
    )
    missing = raw_request(
        stack.url, "GET", "/conversations/no-such-id", headers={"Authorization": f"Bearer {bob}"}
    )

    assert_json_error(response, 404, "conversation_not_found")
    # The same answer as for an id that does not exist: nothing tells them apart.
    assert response.body == missing.body
    assert chat_records(stack, client) == []


def test_continuing_someone_elses_conversation_is_not_found_and_not_sent(
    alice_conversation: str, bob: str, stack: DevStack, client: httpx.Client
) -> None:
    clear_upstream(stack, client)
    as_get = raw_request(
        stack.url,
        "GET",
        f"/chat?q=tell+me+more&conversation={alice_conversation}",
        headers={"Authorization": f"Bearer {bob}"},
    )
    as_post = raw_request(
        stack.url,
        "POST",
        "/chat",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {bob}"},
        body=body(conversation=alice_conversation),
    )
    as_event = raw_request(
        stack.url,
        "GET",
        f"/chat?q=tell+me+more&conversation={alice_conversation}&access_token={bob}",
        headers=SSE,
    )

    assert_json_error(as_get, 404, "conversation_not_found")
    assert_json_error(as_post, 404, "conversation_not_found")
    assert sse_error(as_event)["code"] == "conversation_not_found"
    assert chat_records(stack, client) == []


# --- an event the local URL cannot produce ---------------------------------------------------


def _event(body_text: str, *, base64_encoded: bool, token: str) -> dict[str, Any]:
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    event = function_url_event("POST", "/chat", headers, b"{}")
    # A function URL never flags a body it did not encode; the handler must still cope.
    event.update(body=body_text, isBase64Encoded=base64_encoded)
    return event


@pytest.mark.parametrize(
    "payload",
    ["not base64 at all!", "e30", "e3 0=", "e30===x", "-_-_"],
    ids=["punctuation", "missing-padding", "embedded-space", "data-after-padding", "url-alphabet"],
)
async def test_body_flagged_base64_that_is_not_base64_is_invalid_body(
    payload: str, stack: DevStack, client: httpx.Client
) -> None:
    assert stack.app is not None
    context = InvocationContext(aws_request_id="hardening-b64", deadline_ms=now_ms() + 30_000)

    response = await stack.app.handle(_event(payload, base64_encoded=True, token=TOKEN), context)

    frames = [frame async for frame in response.body]
    assert response.status_code == 400
    assert json.loads(b"".join(frames))["error"]["code"] == "invalid_body"
    assert chat_records(stack, client) == []
