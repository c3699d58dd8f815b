"""One invocation against the Runtime API stand-in: framing, chunk timing, error reporting."""

from __future__ import annotations

import asyncio
import json

import pytest

from devtools.fake_runtime_api import FakeRuntimeAPI

from .support import HANDLERS, WAIT, Gate, StartRuntime

NUL8 = b"\x00" * 8


async def test_each_frame_reaches_the_api_as_its_own_chunk_before_the_next_is_produced(
    api: FakeRuntimeAPI, start_runtime: StartRuntime, gate: Gate
) -> None:
    frames = ["data: one\n\n", "data: two\n\n", "data: three\n\n"]
    invocation = api.enqueue({"gate": gate.address, "frames": frames})
    await start_runtime(f"{HANDLERS}.gated")
    line = await gate.connection()

    # The prelude is sent as soon as handle() returns, before the body has produced anything.
    prelude = await asyncio.wait_for(invocation.next_chunk(), WAIT)
    assert prelude is not None
    assert prelude.data == (
        b'{"statusCode":200,"headers":{"content-type":"text/event-stream"},"cookies":[]}' + NUL8
    )
    # The handler produces frame n+1 only after the test saw frame n arrive: buffering would hang.
    for frame in frames:
        line.release()
        chunk = await asyncio.wait_for(invocation.next_chunk(), WAIT)
        assert chunk is not None
        assert chunk.data == frame.encode()
    assert await asyncio.wait_for(invocation.next_chunk(), WAIT) is None
    await asyncio.wait_for(invocation.done, WAIT)
    assert invocation.trailers == {}
    assert await line.closed()


async def test_prelude_is_compact_json_then_exactly_eight_nul_bytes(
    api: FakeRuntimeAPI, start_runtime: StartRuntime
) -> None:
    invocation = api.enqueue(
        {
            "status": 201,
            "headers": {"content-type": "text/plain; charset=utf-8", "x-note": "naïve"},
            "cookies": ["a=1; Secure", "b=2"],
            "frames": ["hello"],
        }
    )
    await start_runtime(f"{HANDLERS}.echo")
    await asyncio.wait_for(invocation.done, WAIT)

    assert [chunk.data for chunk in invocation.chunks] == [
        b'{"statusCode":201,"headers":{"content-type":"text/plain; charset=utf-8",'
        b'"x-note":"na\\u00efve"},"cookies":["a=1; Secure","b=2"]}' + NUL8,
        b"hello",
    ]


async def test_response_is_posted_as_a_streaming_function_url_response(
    api: FakeRuntimeAPI, start_runtime: StartRuntime
) -> None:
    invocation = api.enqueue({"frames": ["x"]})
    await start_runtime(f"{HANDLERS}.echo")
    await asyncio.wait_for(invocation.done, WAIT)

    headers = invocation.response_headers
    assert headers["lambda-runtime-function-response-mode"] == "streaming"
    assert headers["transfer-encoding"] == "chunked"
    assert headers["trailer"] == (
        "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"
    )
    assert headers["content-type"] == "application/vnd.awslambda.http-integration-response"
    assert "content-length" not in headers


async def test_empty_frames_are_skipped_because_an_empty_chunk_ends_the_body(
    api: FakeRuntimeAPI, start_runtime: StartRuntime
) -> None:
    invocation = api.enqueue({"frames": ["a", "", "b"]})
    await start_runtime(f"{HANDLERS}.echo")
    await asyncio.wait_for(invocation.done, WAIT)

    assert [chunk.data for chunk in invocation.chunks[1:]] == [b"a", b"b"]


async def test_error_raised_by_handle_goes_to_error_endpoint_and_nothing_is_streamed(
    api: FakeRuntimeAPI, start_runtime: StartRuntime
) -> None:
    invocation = api.enqueue({"rawPath": "/nowhere"})
    await start_runtime(f"{HANDLERS}.fails_in_handle")
    await asyncio.wait_for(invocation.done, WAIT)

    assert invocation.error is not None
    assert invocation.error.error_type == "ValueError"
    assert invocation.error.json() == {
        "errorType": "ValueError",
        "errorMessage": "no route for this event",
    }
    assert invocation.chunks == []
    assert not [r for r in api.requests if r.path.endswith(f"{invocation.request_id}/response")]


@pytest.mark.parametrize("handler", ["returns_dict", "list_body"])
async def test_a_response_that_cannot_stream_is_reported_before_the_first_byte(
    api: FakeRuntimeAPI, start_runtime: StartRuntime, handler: str
) -> None:
    invocation = api.enqueue({})
    await start_runtime(f"{HANDLERS}.{handler}")
    await asyncio.wait_for(invocation.done, WAIT)

    assert invocation.error is not None
    assert invocation.error.error_type == "TypeError"
    assert "StreamingResponse" in invocation.error.json()["errorMessage"]
    assert invocation.chunks == []


async def test_error_raised_by_the_body_ends_the_stream_with_both_error_trailers(
    api: FakeRuntimeAPI, start_runtime: StartRuntime
) -> None:
    invocation = api.enqueue({})
    await start_runtime(f"{HANDLERS}.fails_mid_stream")
    await asyncio.wait_for(invocation.done, WAIT)

    assert [chunk.data for chunk in invocation.chunks[1:]] == [b"data: first\n\n"]
    assert invocation.trailers["lambda-runtime-function-error-type"] == "RuntimeError"
    assert invocation.error_trailer() == {
        "errorType": "RuntimeError",
        "errorMessage": "upstream went away",
    }
    assert invocation.error is None


async def test_a_text_frame_ends_the_stream_with_a_type_error_trailer(
    api: FakeRuntimeAPI, start_runtime: StartRuntime
) -> None:
    invocation = api.enqueue({})
    await start_runtime(f"{HANDLERS}.yields_text")
    await asyncio.wait_for(invocation.done, WAIT)

    assert [chunk.data for chunk in invocation.chunks[1:]] == [b"data: ok\n\n"]
    assert invocation.error_trailer()["errorType"] == "TypeError"


async def test_an_event_that_is_not_json_is_reported_and_the_next_one_is_served(
    api: FakeRuntimeAPI, start_runtime: StartRuntime
) -> None:
    broken = api.enqueue(b"{not json")
    fine = api.enqueue({"frames": ["ok"]})
    await start_runtime(f"{HANDLERS}.echo")
    await asyncio.wait_for(fine.done, WAIT)

    assert broken.error is not None
    assert broken.error.error_type == "Runtime.UnmarshalError"
    assert fine.chunks[-1].data == b"ok"


async def test_context_and_trace_variable_come_from_the_next_headers(
    api: FakeRuntimeAPI, start_runtime: StartRuntime
) -> None:
    traced = api.enqueue(
        {"n": 1},
        request_id="req-1",
        deadline_ms=4_102_444_800_000,
        function_arn="arn:aws:lambda:eu-west-1:111122223333:function:relay:live",
        trace_id="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    )
    untraced = api.enqueue({"n": 2})
    await start_runtime(f"{HANDLERS}.identity")
    await asyncio.wait_for(untraced.done, WAIT)

    first = json.loads(traced.chunks[-1].data)
    assert first["event"] == {"n": 1}
    assert first["request_id"] == "req-1"
    assert first["deadline_ms"] == 4_102_444_800_000
    assert first["function_arn"] == "arn:aws:lambda:eu-west-1:111122223333:function:relay:live"
    assert first["trace_id"] == first["trace_env"] == traced.trace_id
    second = json.loads(untraced.chunks[-1].data)
    assert second["trace_id"] is None
    assert second["trace_env"] is None  # not left over from the previous invocation
