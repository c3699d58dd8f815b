"""The local REST API stage (``devtools.front_doors.RestApiDoor``): what it serves, what it leaves
to the function, and ``make run`` in that shape (``FRONT_DOOR=api-gateway``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devtools.front_doors import RestApiDoor
from devtools.http11 import RawRequest
from devtools.local_url import FunctionUrlConfig, running_local_url
from devtools.stack import DevStack, stack_from_env
from glm_relay.runtime import InvocationContext, StreamingResponse
from tests.support.sse_client import read_stream

ORIGIN = "https://app.example"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/api/chat?q=x", "/chat?q=x"),
        ("/api/", "/"),
        ("/api", "/"),
        ("/api?x=1", "/?x=1"),
        ("/api/v1/models", "/v1/models"),
        ("/chat", None),
        ("/apix/chat", None),
        ("/", None),
    ],
)
def test_only_paths_under_the_stage_reach_the_function(target: str, expected: str | None) -> None:
    assert RestApiDoor("api").target(target) == expected


def test_the_event_is_the_rest_proxy_format_with_the_stage_in_its_context() -> None:
    request = RawRequest("POST", "/api/v1/chat/completions?x=1", "HTTP/1.1", [("Host", "h:1")])

    event = RestApiDoor("api").event(request, "req-1")

    assert (event["httpMethod"], event["path"], event["resource"]) == (
        "POST",
        "/v1/chat/completions",
        "/{proxy+}",
    )
    assert event["requestContext"]["path"] == "/api/v1/chat/completions"
    assert event["requestContext"]["stage"] == "api"
    assert event["requestContext"]["requestId"] == "req-1"
    assert event["queryStringParameters"] == {"x": "1"}
    assert "rawPath" not in event and "authorizer" not in event["requestContext"]


def test_a_stage_is_one_path_segment() -> None:
    for bad in ("", "a/b"):
        with pytest.raises(ValueError):
            RestApiDoor(bad)


def test_preflights_and_cors_come_from_the_function_only(rest_api_url: str, client) -> None:
    ask = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}

    preflight = client.options(f"{rest_api_url}/v1/chat/completions", headers=ask)
    answer = client.get(f"{rest_api_url}/chat?q=Hi", headers={"Origin": ORIGIN})

    assert preflight.status_code == 204
    assert "x-api-key" in preflight.headers["access-control-allow-headers"]
    # One Access-Control-Allow-Origin each, from the function (it sets the request id too).
    for response in (preflight, answer):
        assert response.headers.get_list("access-control-allow-origin") == ["*"]
        assert response.headers["x-request-id"]
    assert answer.status_code == 401


def test_a_function_that_fails_before_its_first_byte_is_api_gateway_s_502(client) -> None:
    async def broken(event: dict[str, Any], context: InvocationContext) -> StreamingResponse:
        raise RuntimeError("no")

    with running_local_url(broken, FunctionUrlConfig(rest_api_stage="api")) as origin:
        response = client.get(f"{origin}/api/chat")

    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}


def test_front_door_variable_picks_the_shape_of_make_run() -> None:
    assert stack_from_env({}).rest_api_stage is None
    assert stack_from_env({"FRONT_DOOR": "function-url"}).rest_api_stage is None
    assert stack_from_env({"FRONT_DOOR": "api-gateway"}).rest_api_stage == "api"
    with pytest.raises(SystemExit, match="FRONT_DOOR"):
        stack_from_env({"FRONT_DOOR": "alb"})


def test_a_stack_served_as_a_rest_api_streams_under_its_stage(stack: DevStack) -> None:
    rest = DevStack(rest_api_stage="api", settings_overrides={"default_model": "glm-4-flash"})
    with rest.running(), httpx.Client(timeout=30) as client:
        assert rest.url.endswith("/api")
        result = read_stream(
            client,
            "GET",
            f"{rest.url}/chat?q=Hi+%23chunks%3D2",
            headers={"Authorization": f"Bearer {rest.token}"},
        )
        outside = client.get(rest.url.removesuffix("/api") + "/chat?q=Hi")

    assert result.status == 200 and result.names == ["meta", "chat", "chat", "done"]
    assert outside.status_code == 403
