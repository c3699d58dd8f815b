"""The resumer's own events: when a resumed stream ends for a reason of the resuming invocation
(its time ran out), the error event it writes names no event of the stream, and a reconnect with
that id gets exactly the events after the last real one it had."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.local_url import FunctionUrlConfig
from devtools.stack import DevStack
from glm_relay.web.app import WebApp
from mock_upstream.answer import expected_chunks
from tests.hardening.support import serving
from tests.support.resume import Container, chat_url, cut_after
from tests.support.sse_client import read_stream
from tests.support.upstream import upstream_bodies

pytestmark = pytest.mark.usefixtures("upstream_log")

SHORT_TIMEOUT = 3.0  # with the 2 s deadline margin: one second of resumed stream


@pytest.fixture(scope="module")
def short_lived_url(stack: DevStack) -> Iterator[str]:
    """A container of the function whose invocations may run only ``SHORT_TIMEOUT`` seconds."""
    assert stack.app is not None
    app = WebApp(stack.app.settings)
    with serving(app, FunctionUrlConfig(timeout_seconds=SHORT_TIMEOUT)) as url:
        yield url


def test_a_reconnect_with_the_resumers_own_error_id_misses_no_event(
    stack, client, container: Container, short_lived_url: str
) -> None:
    url = chat_url(container.url, "A slow one #chunks=30 #delay=120", stack.token)
    cut = cut_after(client, "GET", url, events=3)
    request_id = cut.events[0].json["request_id"]

    first = read_stream(
        client,
        "GET",
        chat_url(short_lived_url, "ignored", stack.token),
        headers={"Last-Event-ID": cut.events[-1].id},
    )

    # Its time ran out before the answer's end: an error of its own, after the last real event.
    error = first.terminal
    assert (error.event, error.json["code"], error.json["retryable"]) == (
        "error",
        "deadline_exceeded",
        True,
    )
    real = [e for e in first.events if e is not error]
    last = real[-1].id if real else cut.events[-1].id
    assert last is not None
    assert error.id == f"{last}.1"
    assert error.json["last_event_id"] == last
    real_ids = {f"{request_id}:{n}" for n in range(1, 100)}
    assert error.id not in real_ids

    # A browser reconnects with the last id it saw, the error's: nothing is skipped.
    rest = read_stream(
        client,
        "GET",
        chat_url(stack.url, "ignored", stack.token),
        headers={"Last-Event-ID": error.id or ""},
    )
    events = cut.events + real + rest.events
    assert [e.id for e in events] == [f"{request_id}:{n}" for n in range(1, len(events) + 1)]
    assert rest.terminal.event == "done"
    [sent] = upstream_bodies(stack, client)
    assert "".join(e.json["content"] for e in events if e.event == "chat") == "".join(
        expected_chunks(sent)
    )
