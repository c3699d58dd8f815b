"""A DynamoDB that stalls or drops connections, end to end: a container of the function whose
DynamoDB is moto behind a stalling proxy (``tests/support/stall_proxy.py``), serving answers as
Lambda does (the answer runs on after its client left).

- A stall mid-answer, longer than three writes: the record catches up once DynamoDB answers, and
  a reconnect gets exactly the rest of the answer and its ``done``.
- A stall as the answer ends: the body ends within ``BOOKKEEPING_WAIT_SECONDS`` of the terminal
  event; the bookkeeping left over is settled once DynamoDB answers (the record gets its end).
- Connections refused as the answer ends: what could not be settled is logged, once, by name.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from devtools.local_url import FunctionUrlConfig, serving_thread
from devtools.stack import DevStack
from glm_relay.state import UserState
from glm_relay.state.dynamo_client import DynamoClient
from glm_relay.web.app import WebApp
from glm_relay.web.services import Services
from mock_upstream.answer import expected_chunks
from tests.support.resume import chat_url, cut_after
from tests.support.sse_client import StreamResult, parse_frames, read_stream
from tests.support.stall_proxy import StallingProxy, stalling_proxy
from tests.support.upstream import upstream_bodies

pytestmark = pytest.mark.usefixtures("upstream_log")

BOOKKEEPING_WAIT = 1.0  # the default
SLACK = 0.6  # a shared machine's scheduling, and the frames still on their way


@pytest.fixture
def proxy(stack: DevStack) -> Iterator[StallingProxy]:
    with stalling_proxy(stack.moto.endpoint) as running:
        yield running


@contextlib.contextmanager
def container_behind(
    stack: DevStack, proxy: StallingProxy, *, read_timeout: float
) -> Iterator[str]:
    """A container of the function whose DynamoDB calls all go through ``proxy``, each given up
    after ``read_timeout`` seconds without an answer; yields its URL."""
    assert stack.app is not None
    settings = replace(stack.app.settings, bookkeeping_wait_seconds=BOOKKEEPING_WAIT)

    def client() -> DynamoClient:
        return DynamoClient(endpoint=proxy.url, connect_timeout=0.5, read_timeout=read_timeout)

    state = UserState(settings, client_factory=client)
    app = WebApp(settings, services=Services.from_settings(settings, state=state))
    config = FunctionUrlConfig(allowed_origins=settings.allowed_origins, keep_running=True)
    with serving_thread(app.handle, config) as serving:
        yield serving.url


def resume(client: httpx.Client, stack: DevStack, last_event_id: str) -> StreamResult:
    """Reconnect to the session stack's own container (DynamoDB without the proxy)."""
    url = chat_url(stack.url, "ignored", stack.token)
    return read_stream(client, "GET", url, headers={"Last-Event-ID": last_event_id})


def test_a_stall_longer_than_three_writes_is_recovered_and_the_answer_resumes_to_its_end(
    stack: DevStack, client: httpx.Client, proxy: StallingProxy
) -> None:
    with container_behind(stack, proxy, read_timeout=0.5) as url:
        cut = cut_after(
            client, "GET", chat_url(url, "Through a stall #chunks=40 #delay=100", stack.token), 3
        )
        request_id = cut.events[0].json["request_id"]
        proxy.stall()  # every write times out for three seconds: four of them, one after another
        time.sleep(3.0)
        proxy.release()

        rest = resume(client, stack, cut.events[-1].id or "")

    events = cut.events + rest.events
    assert rest.only_terminal_is_last() and rest.terminal.event == "done", rest.terminal.data
    assert [e.id for e in events] == [f"{request_id}:{n}" for n in range(1, len(events) + 1)]
    [sent] = upstream_bodies(stack, client)
    assert cut.text + rest.text == "".join(expected_chunks(sent))


def lines(caplog: pytest.LogCaptureFixture, message: str) -> list[Any]:
    """The log records with this message (their fields are attributes)."""
    return [record for record in caplog.records if record.getMessage() == message]


def answer_ending_with(
    client: httpx.Client, url: str, token: str, action: Callable[[], None]
) -> StreamResult:
    """Read a whole twelve-piece answer, calling ``action()`` (what DynamoDB does) when its tenth
    event arrives; asserts it ends with ``done`` and its body within the bookkeeping wait."""
    answer_url = chat_url(url, "Ends with DynamoDB in trouble #chunks=12 #delay=50", token)
    result = StreamResult(0, httpx.Headers())
    terminal_at = 0.0
    with client.stream("GET", answer_url, headers={"Accept": "text/event-stream"}) as response:
        buffer = b""
        for chunk in response.iter_raw():
            before = len(result.events)
            buffer = parse_frames(buffer + chunk, result, time.monotonic())
            if before < 10 <= len(result.events):
                action()
            if result.events and result.events[-1].event in ("done", "error") and not terminal_at:
                terminal_at = time.monotonic()
            result.raw += chunk
    assert result.terminal.event == "done"
    assert time.monotonic() - terminal_at < BOOKKEEPING_WAIT + SLACK
    return result


@pytest.fixture
def url(stack: DevStack, proxy: StallingProxy, caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    """A container behind ``proxy`` with DynamoDB's usual timeouts, its log lines captured."""
    caplog.set_level(logging.INFO)
    with container_behind(stack, proxy, read_timeout=5.0) as running:
        yield running


def test_a_slow_dynamodb_at_the_end_holds_the_body_only_for_the_bookkeeping_wait(
    stack: DevStack,
    client: httpx.Client,
    proxy: StallingProxy,
    url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The caller has its done; the body (and the invocation) ends a second later at most,
    # though DynamoDB has not answered the record's end or the quota yet.
    result = answer_ending_with(client, url, stack.token, proxy.stall)
    time.sleep(2.0)
    proxy.release()  # DynamoDB answers again: what was left is settled now
    last_chat = result.events[-2].id or ""
    deadline = time.monotonic() + 10
    rest = resume(client, stack, last_chat)
    while rest.status != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        rest = resume(client, stack, last_chat)

    assert [e.event for e in rest.events] == ["done"]
    request_id = result.events[0].json["request_id"]
    [line] = [r for r in lines(caplog, "request") if r.request_id == request_id]
    assert set(line.deferred) >= {"stream_record", "quota"}
    assert not lines(caplog, "bookkeeping not settled")


def test_bookkeeping_that_cannot_be_settled_is_logged_once_by_name(
    stack: DevStack,
    client: httpx.Client,
    proxy: StallingProxy,
    url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = answer_ending_with(client, url, stack.token, proxy.cut)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not lines(caplog, "bookkeeping not settled"):
        time.sleep(0.1)
    proxy.release()  # the record's end is still being tried: it lands now
    rest = resume(client, stack, result.events[-2].id or "")

    [lost] = lines(caplog, "bookkeeping not settled")
    assert lost.unsettled == ["quota"]
    assert lost.request_id == result.events[0].json["request_id"]
    assert [e.event for e in rest.events] == ["done"]
