"""An image attached on the page reaches a vision model through a streamed ``fetch`` POST and the
answer renders as an EventSource answer does; the "search the web" switch lists the sources as
safe links under the answer."""

from __future__ import annotations

import base64
import json

from playwright.sync_api import expect

from mock_upstream.answer import expected_text, expected_web_search
from tests.browser.conftest import ARTIFACTS
from tests.hardening.support import mint
from tests.support.images import b64, png

VISION = "glm-4.6v-flash"
# Its own caller, with no practical quota: the session's developer token has a daily one.
TOKEN = mint("page-vision-tests")


def choose_vision_model(relay) -> None:
    relay.open(token=TOKEN)
    expect(relay.by_id("model-select")).to_have_value("glm-4-flash")  # the relay's list is in
    expect(relay.by_id("attach-button")).to_be_hidden()  # a text model takes no image
    relay.by_id("model-select").select_option(VISION)
    expect(relay.by_id("attach-button")).to_be_visible()
    relay.by_id("thinking-switch").uncheck()


def test_attach_an_image_and_see_an_answer_about_it(relay, upstream, page) -> None:
    image = png(96, 64)
    choose_vision_model(relay)

    relay.by_id("attach-input").set_input_files(
        files=[{"name": "bands.png", "mimeType": "image/png", "buffer": image}]
    )
    expect(relay.by_id("attachment")).to_be_visible()
    expect(relay.by_id("attachment-name")).to_contain_text("bands.png")
    exchange = relay.ask("What is in this picture? #chunks=12 #delay=20")

    assert relay.wait_finished(exchange) == "done"
    (record,) = upstream.chat_requests()
    body = record["body"]
    assert record["method"] == "POST"
    text_part, image_part = body["messages"][0]["content"]
    assert text_part == {"type": "text", "text": "What is in this picture? #chunks=12 #delay=20"}
    assert base64.b64decode(image_part["image_url"]["url"]) == image
    answer = expected_text(body)
    assert answer.startswith(f"Image 1: PNG, 96x64 px, {len(image)} bytes.")
    assert relay.raw_answer(exchange) == answer
    assert relay.visible_answer(exchange).startswith("Image 1: PNG, 96x64 px")
    # Rendered as an EventSource answer is: the same stats, the image shown with the question.
    expect(exchange.get_by_test_id("tps")).to_be_visible()
    expect(exchange.get_by_test_id("request-id")).to_be_visible()
    expect(exchange.get_by_test_id("question-image")).to_be_visible()
    expect(relay.by_id("attachment")).to_be_hidden()  # sent: the composer is empty again
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "vision-answer.png"), full_page=True)


def test_paste_and_drop_attach_an_image(relay, upstream, page) -> None:
    choose_vision_model(relay)
    script = """([data, how]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], how + '.png', { type: 'image/png' }));
        const id = how === 'paste' ? 'question-input' : 'ask-form';
        const target = document.querySelector('[data-testid=' + id + ']');
        const init = { bubbles: true, cancelable: true };
        const event = how === 'paste'
          ? new ClipboardEvent('paste', { ...init, clipboardData: transfer })
          : new DragEvent('drop', { ...init, dataTransfer: transfer });
        target.dispatchEvent(event);
    }"""

    for how in ("paste", "drop"):
        page.evaluate(script, [b64(png(8, 8)), how])
        expect(relay.by_id("attachment-name")).to_contain_text(f"{how}.png")
        relay.by_id("attachment-remove").click()
        expect(relay.by_id("attachment")).to_be_hidden()
    assert upstream.chat_requests() == []


def test_a_refused_image_post_shows_the_code(relay, upstream, page) -> None:
    """A body over the function URL's 6 MB never reaches the relay: the URL's own 413 is shown
    with a code too."""
    choose_vision_model(relay)
    page.route(
        "**/chat",
        lambda route: route.fulfill(
            status=413,
            content_type="application/json",
            body=json.dumps({"Message": "Request must be smaller than 6291456 bytes"}),
        ),
    )
    relay.by_id("attach-input").set_input_files(
        files=[{"name": "big.png", "mimeType": "image/png", "buffer": png(4, 4)}]
    )
    expect(relay.by_id("attachment")).to_be_visible()
    exchange = relay.ask("Too big?")

    assert relay.wait_finished(exchange) == "error"
    assert relay.error_code(exchange) == "body_too_large"


def test_ask_with_search_and_see_the_source_links(relay, upstream, page) -> None:
    relay.open("?q=" + "Harbour%20news%20today%20%23chunks%3D10&web_search=1", token=TOKEN)
    exchange = relay.exchanges().first

    assert relay.wait_finished(exchange) == "done"
    expect(relay.by_id("search-switch")).to_be_checked()
    (record,) = upstream.chat_requests()
    results = expected_web_search(record["body"])
    assert results is not None and len(results) == 5
    links = exchange.get_by_test_id("source-link")
    expect(links).to_have_count(5)
    assert links.evaluate_all("as => as.map(a => a.href)") == [r["link"] for r in results]
    assert links.evaluate_all("as => as.map(a => a.textContent)") == [r["title"] for r in results]
    assert relay.raw_answer(exchange).endswith("[ref_1] [ref_2] [ref_3]")
    assert "web_search=1" in str(exchange.get_by_test_id("permalink").get_attribute("href"))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "search-sources.png"), full_page=True)


def test_sources_are_only_text_and_http_links(relay, upstream, page) -> None:
    hostile = [
        {
            "title": "<img src=x onerror=alert(1)>",
            "link": "javascript:alert(1)",
            "media": "<b>m</b>",
        },
        {"title": "Fine", "link": "https://ok.example/a", "media": "OK"},
    ]
    events = (
        'event: meta\nid: r:1\ndata: {"request_id": "r", "model": "glm-4-flash"}\n\n'
        f"event: search\nid: r:2\ndata: {json.dumps({'results': hostile})}\n\n"
        'event: chat\nid: r:3\ndata: {"content": "Hi"}\n\n'
        'event: done\nid: r:4\ndata: {"finish_reason": "stop", "usage": null}\n\n'
    )
    page.route(
        "**/chat?*",
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=events),
    )
    relay.open(token=TOKEN)
    exchange = relay.ask("Anything")

    assert relay.wait_finished(exchange) == "done"
    sources = exchange.get_by_test_id("source")
    expect(sources).to_have_count(2)
    expect(exchange.get_by_test_id("source-link")).to_have_count(1)
    assert sources.first.inner_text().startswith("<img src=x onerror=alert(1)>")
    assert exchange.get_by_test_id("sources").locator("img, b, [href^=javascript]").count() == 0
    assert upstream.chat_requests() == []
