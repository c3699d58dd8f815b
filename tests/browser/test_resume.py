"""A real browser whose connection breaks mid-answer: EventSource reconnects by itself with its
Last-Event-ID, the relay resumes the answer from its record, and the page shows it whole, once."""

from __future__ import annotations

from playwright.sync_api import expect

from mock_upstream.answer import expected_chunks

SOME_TEXT = (
    "() => (document.querySelector('[data-testid=answer-raw]')?.textContent || '').length > 30"
)


def test_a_cut_answer_comes_back_by_itself_whole_once_and_marked(
    relay, upstream, page, container
) -> None:
    asked: list = []
    page.on("request", lambda request: asked.append(request) if "/chat?" in request.url else None)
    relay.open(origin=container.url)
    # About six seconds of answer: the browser's own reconnect delay (three seconds) lands in
    # the middle of it, so the resumed stream replays the record and then follows it live.
    exchange = relay.ask("Keep talking #chunks=75 #delay=80")
    page.wait_for_function(SOME_TEXT)
    assert container.serving.drop_connections() >= 1

    expect(exchange.get_by_test_id("status")).to_have_text("Reconnecting…")
    assert relay.wait_finished(exchange, timeout=20_000) == "done"
    [record] = upstream.chat_requests()
    assert relay.raw_answer(exchange) == "".join(expected_chunks(record["body"]))
    expect(exchange.get_by_test_id("reconnected")).to_have_text("reconnected")
    expect(exchange.get_by_test_id("usage")).to_be_visible()
    resumed = [r.header_value("last-event-id") for r in asked]
    assert len(resumed) == 2 and resumed[0] is None
    assert resumed[1] and resumed[1].startswith(exchange.get_by_test_id("request-id").inner_text())
