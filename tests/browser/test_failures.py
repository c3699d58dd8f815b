"""Failures a person can meet on the page: upstream faults, Stop, a broken stream, a bad token."""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import expect

from glm_relay.access import mint_access_token
from mock_upstream.answer import expected_chunks


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("rate_limit", "rate_limited"),
        ("drop", "upstream_disconnected"),
        ("stall", "upstream_stalled"),
    ],
)
def test_a_failed_answer_shows_its_error_code_and_the_next_question_is_answered(
    relay, upstream, fault, code
) -> None:
    relay.open()
    failed = relay.ask(f"Will this work #fault={fault}")
    assert relay.wait_finished(failed) == "error"
    assert relay.error_code(failed) == code
    expect(failed.get_by_test_id("error-message")).not_to_be_empty()
    expect(failed.get_by_test_id("status")).to_have_text("Failed")
    expect(relay.by_id("send")).to_be_enabled()
    expect(relay.by_id("stop")).to_be_disabled()

    upstream.clear()
    answered = relay.ask("And now a real answer #chunks=4")
    assert relay.wait_finished(answered) == "done"
    [record] = upstream.chat_requests()
    assert relay.raw_answer(answered) == "".join(expected_chunks(record["body"]))
    assert relay.error_code(failed) == code, "the earlier exchange keeps its error"


def test_ask_again_after_a_failure_repeats_the_question(relay, upstream) -> None:
    relay.open()
    failed = relay.ask("Try me twice #fault=drop&times=1")
    assert relay.wait_finished(failed) == "error"
    failed.get_by_test_id("retry").click()
    again = relay.exchanges().nth(1)
    assert relay.wait_finished(again) == "done"
    expect(again.get_by_test_id("question")).to_have_text("Try me twice #fault=drop&times=1")


def test_stop_ends_the_answer_and_the_upstream_request(relay, upstream, page) -> None:
    relay.open()
    exchange = relay.ask("A long story #chunks=80 #delay=100")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=answer-raw]').textContent.length > 0"
    )
    relay.by_id("stop").click()
    assert relay.wait_finished(exchange) == "stopped"
    expect(exchange.get_by_test_id("status")).to_have_text("Stopped")
    stopped_text = relay.raw_answer(exchange)

    deadline = time.monotonic() + 5
    while upstream.stats()["cancelled_streams"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = upstream.stats()
    assert stats["cancelled_streams"] == 1, stats
    assert stats["completed_streams"] == 0
    [record] = upstream.chat_requests()
    assert record["outcome"] == "client_gone"
    assert record["chunks_sent"] < 80
    page.wait_for_timeout(300)
    assert relay.raw_answer(exchange) == stopped_text
    assert stopped_text and "".join(expected_chunks(record["body"])).startswith(stopped_text)
    expect(relay.by_id("send")).to_be_enabled()
    expect(relay.by_id("stop")).to_be_disabled()


def test_a_broken_stream_the_relay_cannot_resume_shows_connection_lost_and_asks_no_more(
    relay, page
) -> None:
    # A stream cut after two events, with a 50 ms reconnect delay. The browser reconnects once
    # with the last id it has; the relay answers 204 (nothing to resume), so it stops there.
    calls: list[str] = []
    cut = (
        "retry: 50\n\n"
        'event: meta\nid: r:1\ndata: {"request_id":"r","model":"glm-4-flash"}\n\n'
        'event: chat\nid: r:2\ndata: {"content":"Half an"}\n\n'
    )

    def play(route) -> None:
        calls.append(route.request.url)
        if len(calls) > 1:
            route.fulfill(status=204, body="")
        else:
            route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=cut)

    page.route("**/chat?*", play)
    relay.open()
    exchange = relay.ask("Break the line")
    assert relay.wait_finished(exchange) == "error"
    assert relay.error_code(exchange) == "connection_lost"
    assert relay.raw_answer(exchange) == "Half an"
    page.wait_for_timeout(600)
    assert len(calls) == 2  # the question, then one reconnect (its Last-Event-ID: test_resume)
    assert exchange.get_by_test_id("reconnected").count() == 0


def _token(kind: str, stack) -> str:
    if kind == "garbage":
        return "not-a-token"
    if kind == "signed with another key":
        return mint_access_token("developer", 600, "another-signing-key-of-enough-length!")
    return mint_access_token("developer", 60, stack.access_token_secret, now=time.time() - 3600)


@pytest.mark.parametrize("kind", ["garbage", "signed with another key", "expired"])
def test_a_wrong_or_expired_token_shows_unauthorized(relay, upstream, stack, kind) -> None:
    relay.open(token=_token(kind, stack))
    exchange = relay.ask("Let me in")
    assert relay.wait_finished(exchange) == "error"
    assert relay.error_code(exchange) == "unauthorized"
    expect(exchange.get_by_test_id("error")).to_contain_text("Settings")
    assert upstream.chat_requests() == []


def test_markup_written_by_the_model_is_shown_as_text(relay, upstream, page) -> None:
    # A tool call's arguments carry the question back, so the model's own output holds markup.
    dialogs: list[str] = []

    def seen(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", seen)
    hostile = "<img src=x onerror=alert(1)> <script>alert(2)</script>"
    relay.open()
    exchange = relay.ask(f"{hostile} #fault=tool_call")
    assert relay.wait_finished(exchange) == "done"

    arguments = exchange.get_by_test_id("tool-call-arguments").text_content()
    assert json.loads(arguments or "") == {"query": hostile}
    expect(exchange.get_by_test_id("tool-call")).to_contain_text("lookup")
    expect(exchange.get_by_test_id("question")).to_have_text(f"{hostile} #fault=tool_call")
    assert page.locator("main img, main script").count() == 0
    page.wait_for_timeout(100)
    assert dialogs == []
