"""How the page is reached and driven: the token link, linked questions, another origin, the
keyboard, and the session's history."""

from __future__ import annotations

import functools
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from mock_upstream.answer import expected_chunks
from tests.browser.conftest import PAGE_FILE, ROOT


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def embedding_example() -> str:
    """The client code from docs/embedding.md, as a page."""
    doc = (ROOT / "docs" / "embedding.md").read_text(encoding="utf-8")
    match = re.search(r"```html\n(.*?)```", doc, re.S)
    assert match, "docs/embedding.md lost its html example"
    return "<!doctype html><meta charset=utf-8><title>embed</title>" + match.group(1)


@pytest.fixture
def other_origin(tmp_path: Path) -> Iterator[str]:
    """A plain static server on another loopback port: the page, and the embedding example."""
    shutil.copy(PAGE_FILE, tmp_path / "index.html")
    (tmp_path / "embed.html").write_text(embedding_example(), encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_token_leaves_the_address_bar_and_is_kept_for_the_next_visit(
    relay, upstream, page, stack
) -> None:
    relay.open()
    assert page.url == f"{stack.url}/"
    assert stack.token not in page.evaluate("location.href + history.state")

    page.goto(f"{stack.url}/")  # a later visit, without the fragment
    expect(relay.by_id("token-input")).to_have_value(stack.token)
    exchange = relay.ask("Do you remember me #chunks=3")
    assert relay.wait_finished(exchange) == "done"
    [record] = upstream.chat_requests()
    assert relay.raw_answer(exchange) == "".join(expected_chunks(record["body"]))


def test_a_link_with_a_question_asks_it_on_load(relay, upstream, page) -> None:
    question = "Linked question #chunks=5"
    relay.open(f"?q={quote(question)}&model=glm-4-air")
    exchange = relay.exchanges().first
    assert relay.wait_finished(exchange) == "done"

    expect(exchange.get_by_test_id("question")).to_have_text(question)
    expect(exchange.get_by_test_id("answer-model")).to_have_text("glm-4-air")
    expect(relay.by_id("model-select")).to_have_value("glm-4-air")
    [record] = upstream.chat_requests()
    assert record["body"]["model"] == "glm-4-air"
    assert relay.raw_answer(exchange) == "".join(expected_chunks(record["body"]))
    link = exchange.get_by_test_id("permalink").get_attribute("href")
    assert link == f"/?q={quote(question).replace('%20', '+')}&model=glm-4-air"


def test_a_page_on_another_origin_gets_answers_from_the_function_url(
    relay, upstream, page, stack, other_origin
) -> None:
    relay.open(origin=other_origin)
    # By default the page asks its own origin, which only serves files.
    lost = relay.ask("Where are you?")
    assert relay.wait_finished(lost) == "error"
    assert relay.error_code(lost) == "connection_failed"

    relay.set_endpoint(stack.url)
    asked: list[str] = []
    page.on(
        "request", lambda request: asked.append(request.url) if "/chat?" in request.url else None
    )
    exchange = relay.ask("Across origins #chunks=6")
    assert relay.wait_finished(exchange) == "done"
    [record] = upstream.chat_requests()
    assert relay.raw_answer(exchange) == "".join(expected_chunks(record["body"]))
    assert len(asked) == 1 and asked[0].startswith(f"{stack.url}/chat?")

    page.reload()  # the endpoint is remembered
    expect(relay.by_id("endpoint-input")).to_have_value(stack.url)


def test_the_embedding_example_gets_an_answer_and_asks_once(
    upstream, page, stack, other_origin
) -> None:
    page.goto(f"{other_origin}/embed.html")
    page.evaluate(
        "([url, token]) => { window.done = false; const s = ask(url, token, 'Embed me #chunks=7');"
        " s.addEventListener('done', () => { window.done = true; }); }",
        [stack.url, stack.token],
    )
    page.wait_for_function("window.done === true")
    [record] = upstream.chat_requests()
    assert page.locator("#answer").text_content() == "".join(expected_chunks(record["body"]))

    page.evaluate("url => { ask(url, 'wrong', 'Bad token'); }", stack.url)
    expect(page.locator("#answer")).to_contain_text("[unauthorized]")
    page.wait_for_timeout(3_500)  # longer than EventSource's reconnect delay
    assert len(upstream.chat_requests()) == 1


def test_enter_sends_shift_enter_adds_a_line_and_each_question_adds_an_exchange(
    relay, upstream, page
) -> None:
    relay.open()
    box = relay.by_id("question-input")
    box.fill("First line")
    box.press("Shift+Enter")
    box.press_sequentially("second line #chunks=3")
    assert box.input_value() == "First line\nsecond line #chunks=3"
    assert relay.exchanges().count() == 0

    box.press("Enter")
    first = relay.exchanges().nth(0)
    assert relay.wait_finished(first) == "done"
    expect(box).to_have_value("")
    expect(first.get_by_test_id("question")).to_have_text("First line\nsecond line #chunks=3")

    second = relay.ask("A second question #chunks=30 #delay=50", model="glm-4.5")
    expect(second).to_have_attribute("data-state", "streaming")
    # One stream at a time: Enter does nothing until this answer ends.
    expect(relay.by_id("send")).to_be_disabled()
    box.fill("Too soon")
    box.press("Enter")
    expect(box).to_have_value("Too soon")
    assert relay.exchanges().count() == 2
    assert relay.wait_finished(second) == "done"

    sent = upstream.chat_requests()
    assert [r["body"]["messages"][-1]["content"] for r in sent] == [
        "First line\nsecond line #chunks=3",
        "A second question #chunks=30 #delay=50",
    ]
    assert [r["body"]["model"] for r in sent] == ["glm-4-flash", "glm-4.5"]
    # The whole session stays on screen.
    assert relay.raw_answer(first) == "".join(expected_chunks(sent[0]["body"]))
    assert relay.raw_answer(second) == "".join(expected_chunks(sent[1]["body"]))


def test_the_page_fits_a_phone_screen(relay, upstream, page) -> None:
    page.set_viewport_size({"width": 375, "height": 700})
    relay.open()
    exchange = relay.ask("Small screens too #chunks=20")
    assert relay.wait_finished(exchange) == "done"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(relay.by_id("send")).to_be_in_viewport()
