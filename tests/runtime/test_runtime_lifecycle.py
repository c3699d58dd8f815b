"""The runtime process over time: reuse, reconnects, init failures, exit, logging."""

from __future__ import annotations

import asyncio
import json

import pytest

from devtools.fake_runtime_api import FakeRuntimeAPI

from .support import HANDLERS, NEXT_PATH, WAIT, Gate, StartRuntime, wait_for_next_requests


def _payload(invocation) -> dict:
    return json.loads(invocation.chunks[-1].data)


async def test_invocations_share_one_process_one_connection_and_one_event_loop(
    api: FakeRuntimeAPI, start_runtime: StartRuntime
) -> None:
    process = await start_runtime(f"{HANDLERS}.identity")
    payloads = []
    for n in range(3):
        invocation = api.enqueue({"n": n})
        await asyncio.wait_for(invocation.done, WAIT)
        payloads.append(_payload(invocation))

    assert {p["pid"] for p in payloads} == {process.pid}
    assert [p["served"] for p in payloads] == [1, 2, 3]
    assert all(p["same_loop"] for p in payloads)
    assert api.connections_opened == 1
    assert process.returncode is None


async def test_runtime_reconnects_when_the_api_drops_its_idle_connection(
    api: FakeRuntimeAPI, start_runtime: StartRuntime
) -> None:
    await start_runtime(f"{HANDLERS}.identity")
    first = api.enqueue({})
    await asyncio.wait_for(first.done, WAIT)
    await wait_for_next_requests(api, 2)

    await api.drop_connections()
    second = api.enqueue({})
    await asyncio.wait_for(second.done, WAIT)

    assert _payload(second)["served"] == 2  # same process
    assert api.connections_opened == 2


async def test_runtime_opens_a_new_connection_after_each_connection_close_answer(
    start_runtime: StartRuntime,
) -> None:
    async with FakeRuntimeAPI(keep_alive=False) as closing_api:
        await start_runtime(f"{HANDLERS}.identity", closing_api)
        invocations = [closing_api.enqueue({"n": n}) for n in range(3)]
        for invocation in invocations:
            await asyncio.wait_for(invocation.done, WAIT)

        assert [_payload(i)["served"] for i in invocations] == [1, 2, 3]
        assert closing_api.connections_opened >= 6  # one per /next and one per /response


async def test_runtime_reads_chunked_answers_from_the_api(start_runtime: StartRuntime) -> None:
    async with FakeRuntimeAPI(chunked_answers=True) as chunking_api:
        await start_runtime(f"{HANDLERS}.identity", chunking_api)
        invocations = [chunking_api.enqueue({"n": n}) for n in range(2)]
        for invocation in invocations:
            await asyncio.wait_for(invocation.done, WAIT)

        assert [_payload(i)["event"] for i in invocations] == [{"n": 0}, {"n": 1}]
        assert chunking_api.connections_opened == 1


async def test_a_stream_lost_midway_closes_the_body_and_the_next_invocation_is_served(
    api: FakeRuntimeAPI, start_runtime: StartRuntime, gate: Gate
) -> None:
    lost = api.enqueue(
        {"gate": gate.address, "frames": ["data: 1\n\n", "data: 2\n\n", "data: 3\n\n"]}
    )
    await start_runtime(f"{HANDLERS}.gated")
    line = await gate.connection()
    line.release()
    assert await asyncio.wait_for(lost.next_chunk(), WAIT) is not None  # prelude
    assert await asyncio.wait_for(lost.next_chunk(), WAIT) is not None  # frame 1

    await api.drop_connections()
    await asyncio.sleep(0.1)  # let the runtime see the end of the connection
    line.release()

    # The runtime stops at frame 2 and closes the body (no third release is needed).
    assert await line.closed()
    with pytest.raises(ConnectionError):
        await lost.done

    after = api.enqueue({"gate": gate.address, "frames": ["data: again\n\n"]})
    next_line = await gate.connection()
    next_line.release()
    await asyncio.wait_for(after.done, WAIT)
    assert after.chunks[-1].data == b"data: again\n\n"


@pytest.mark.parametrize(
    ("handler", "error_type"),
    [
        ("tests.runtime.no_such_module.handle", "Runtime.ImportModuleError"),
        (f"{HANDLERS}.no_such_function", "Runtime.HandlerNotFound"),
        (f"{HANDLERS}.not_callable", "Runtime.HandlerNotFound"),
        ("handle", "Runtime.MalformedHandlerName"),
    ],
)
async def test_a_handler_that_cannot_load_is_reported_to_init_error_and_the_process_exits(
    api: FakeRuntimeAPI, start_runtime: StartRuntime, handler: str, error_type: str
) -> None:
    process = await start_runtime(handler)
    report = await asyncio.wait_for(api.init_error, WAIT)
    returncode = await asyncio.wait_for(process.wait(), WAIT)

    assert report.error_type == error_type
    assert report.json()["errorType"] == error_type
    assert report.json()["errorMessage"]
    assert returncode != 0
    assert not [r for r in api.requests if r.path == NEXT_PATH]


async def test_a_failed_invocation_logs_one_json_line_without_the_event(
    api: FakeRuntimeAPI, start_runtime: StartRuntime
) -> None:
    secret = "Bearer sk-do-not-log-me"
    invocation = api.enqueue({"headers": {"authorization": secret}})
    process = await start_runtime(f"{HANDLERS}.fails_in_handle")
    await asyncio.wait_for(invocation.done, WAIT)
    process.terminate()
    assert process.stdout is not None
    output = (await asyncio.wait_for(process.stdout.read(), WAIT)).decode()

    (line,) = output.splitlines()
    record = json.loads(line)
    assert record["level"] == "ERROR"
    assert record["requestId"] == invocation.request_id
    assert record["errorType"] == "ValueError"
    assert "sk-do-not-log-me" not in output


async def test_runtime_exits_nonzero_when_the_runtime_api_goes_away(
    api: FakeRuntimeAPI, start_runtime: StartRuntime
) -> None:
    process = await start_runtime(f"{HANDLERS}.identity")
    invocation = api.enqueue({})
    await asyncio.wait_for(invocation.done, WAIT)

    await api.close()

    assert await asyncio.wait_for(process.wait(), WAIT) != 0


@pytest.mark.parametrize(
    ("kind", "handler", "lines"),
    [
        ("next", "identity", ["runtime API failed"]),
        ("response", "identity", ["runtime API failed"]),
        ("error", "fails_in_handle", ["invocation failed", "runtime API failed"]),
        ("init/error", "no_such_function", ["init failed", "init error not reported"]),
    ],
)
async def test_a_malformed_runtime_api_answer_is_logged_and_the_process_exits_nonzero(
    api: FakeRuntimeAPI, start_runtime: StartRuntime, kind: str, handler: str, lines: list[str]
) -> None:
    """An answer that is not HTTP cannot be trusted, nor anything after it on that channel: as
    AWS's runtime clients do, the runtime reports what it still can, logs, and exits non-zero so
    that Lambda replaces the sandbox. Every line it writes is a JSON log record (no traceback)."""
    api.malformed_answers.add(kind)
    invocation = api.enqueue({"n": 1})

    process = await start_runtime(f"{HANDLERS}.{handler}")
    returncode = await asyncio.wait_for(process.wait(), WAIT)

    assert returncode == 1
    assert process.stdout is not None
    records = [json.loads(line) for line in (await process.stdout.read()).decode().splitlines()]
    assert [record["message"] for record in records] == lines
    if kind != "init/error":
        failure = records[-1]
        assert failure["errorType"] == "MalformedAnswer"
        assert f"/{kind}: the answer is malformed" in failure["errorMessage"]
    if kind == "response":
        assert _payload(invocation)["event"] == {"n": 1}  # the answer was delivered before
