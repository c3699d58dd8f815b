"""What a person sees while an answer streams into the page, against the real stack."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from mock_upstream.answer import expected_chunks, expected_reasoning_chunks
from tests.browser.conftest import ARTIFACTS


def words(text: str) -> list[str]:
    """Text without its layout: rendering may turn line breaks into blocks, never change words."""
    return text.split()


def test_answer_appears_while_the_upstream_is_still_sending(relay, upstream) -> None:
    relay.open()
    exchange = relay.ask("Tell me about rivers #chunks=30 #delay=100")

    # 30 chunks 100 ms apart take 3 s; the first words must be on screen long before that.
    relay.page.wait_for_function(
        "() => document.querySelector('[data-testid=answer-raw]').textContent.length > 0"
    )
    partial = relay.raw_answer(exchange)
    visible_partial = relay.visible_answer(exchange)
    [record] = upstream.chat_requests()
    assert record["outcome"] == "open", "the upstream had already finished"
    assert exchange.get_attribute("data-state") == "streaming"
    expect(exchange.get_by_test_id("usage")).to_have_count(0)
    assert visible_partial.strip()

    assert relay.wait_finished(exchange) == "done"
    expected = "".join(expected_chunks(record["body"]))
    assert partial != expected and expected.startswith(partial)
    assert words(visible_partial) == words(partial) or expected.startswith(visible_partial[:20])
    assert relay.raw_answer(exchange) == expected
    assert words(relay.visible_answer(exchange)) == words(expected)
    assert words(relay.rendered_answer(exchange)) == words(expected)


def test_usage_first_token_time_and_speed_are_shown_when_done(relay, upstream) -> None:
    relay.open()
    exchange = relay.ask("Count for me #chunks=12 #delay=20")
    assert relay.wait_finished(exchange) == "done"

    usage = exchange.get_by_test_id("usage")
    assert usage.get_attribute("data-completion") == "12"
    prompt, total = int(usage.get_attribute("data-prompt")), int(usage.get_attribute("data-total"))
    assert prompt > 0 and total == prompt + 12
    expect(usage).to_contain_text(f"{prompt} in · 12 out · {total} tokens")
    expect(exchange.get_by_test_id("ttft")).to_contain_text("first token")
    expect(exchange.get_by_test_id("tps")).to_contain_text("tokens/s")
    expect(exchange.get_by_test_id("status")).to_have_text("Done")
    expect(exchange.get_by_test_id("request-id")).not_to_be_empty()


def test_cjk_emoji_and_line_breaks_are_shown_exactly_as_sent(relay, upstream) -> None:
    relay.open()
    exchange = relay.ask("Greet the world #fault=unicode")
    assert relay.wait_finished(exchange) == "done"

    [record] = upstream.chat_requests()
    expected = "".join(expected_chunks(record["body"]))
    assert relay.raw_answer(exchange) == expected
    assert words(relay.rendered_answer(exchange)) == words(expected)
    visible = relay.visible_answer(exchange)
    for piece in (
        "你好\uff0c世界\uff01\n第二行𠀀",  # fullwidth comma and exclamation mark
        "Emoji: 😀 👩\u200d👩\u200d👧 and 👍🏽, cafe\u0301",
        '"quoted" back\\n is not a newline; C:\\path\\to',
        "data: [DONE]",
        "tab done 🎉",
    ):
        assert piece in visible


def test_a_finished_answer_is_never_asked_again(relay, upstream, page) -> None:
    requested: list[str] = []
    page.on(
        "request",
        lambda request: requested.append(request.url) if "/chat?" in request.url else None,
    )
    relay.open()
    exchange = relay.ask("Only once please #chunks=5")
    assert relay.wait_finished(exchange) == "done"

    # Longer than EventSource's reconnect delay (about 3 s): a page that left the stream open
    # would ask again here.
    page.wait_for_timeout(3_500)
    assert len(upstream.chat_requests()) == 1
    assert len(requested) == 1
    assert exchange.get_attribute("data-state") == "done"
    assert relay.exchanges().count() == 1


def test_reasoning_is_shown_apart_from_the_answer_and_folds_away(relay, upstream) -> None:
    relay.open()
    exchange = relay.ask("Think it through #fault=reasoning #chunks=8")
    assert relay.wait_finished(exchange) == "done"

    [record] = upstream.chat_requests()
    reasoning = exchange.get_by_test_id("reasoning")
    text = exchange.get_by_test_id("reasoning-text")
    assert text.evaluate("n => n.textContent") == "".join(expected_reasoning_chunks(record["body"]))
    assert relay.raw_answer(exchange) == "".join(expected_chunks(record["body"]))
    # Folded once the answer started; one click shows it again.
    assert reasoning.evaluate("d => d.tagName === 'DETAILS' && !d.open")
    expect(text).to_be_hidden()
    reasoning.locator("summary").click()
    expect(text).to_be_visible()


def sse(*events: tuple[str, dict]) -> str:
    frames = [
        f"event: {name}\nid: req-1:{n}\ndata: {json.dumps(data)}\n\n"
        for n, (name, data) in enumerate(events, 1)
    ]
    return "".join(frames)


MARKDOWN_ANSWER = (
    "Here is **the plan** with `inline code`:\n\n"
    "1. first step\n2. second step\n\n"
    "- a point\n- another point\n\n"
    "```python\nprint('<b>not bold</b>')\n```\n\n"
    '<img src=x onerror="window.injected=1"> <script>window.injected=2</script> <b>plain</b>'
)


def test_markdown_is_formatted_and_markup_in_the_answer_stays_text(relay, page) -> None:
    # The fake upstream only writes plain sentences, so this stream is played by the browser's
    # network layer: the page cannot tell the difference.
    body = sse(
        ("meta", {"request_id": "req-1", "model": "glm-4-flash"}),
        *[
            ("chat", {"content": MARKDOWN_ANSWER[i : i + 7]})
            for i in range(0, len(MARKDOWN_ANSWER), 7)
        ],
        (
            "done",
            {
                "finish_reason": "stop",
                "usage": {"prompt_tokens": 3, "completion_tokens": 40, "total_tokens": 43},
                "model": "glm-4-flash",
                "upstream_id": "u-1",
            },
        ),
    )
    page.route(
        "**/chat?*",
        lambda route: route.fulfill(
            status=200, headers={"Content-Type": "text/event-stream"}, body=body
        ),
    )
    relay.open()
    exchange = relay.ask("Show me formatting")
    assert relay.wait_finished(exchange) == "done"

    answer = exchange.get_by_test_id("answer")
    assert relay.raw_answer(exchange) == MARKDOWN_ANSWER
    expect(answer.locator("strong")).to_have_text(["the plan"])
    expect(answer.locator("p > code")).to_have_text(["inline code"])
    expect(answer.locator("ol > li")).to_have_text(["first step", "second step"])
    expect(answer.locator("ul > li")).to_have_text(["a point", "another point"])
    expect(answer.locator("pre code")).to_have_text("print('<b>not bold</b>')")
    assert answer.locator("pre").get_attribute("data-lang") == "python"
    expect(answer).to_contain_text('<img src=x onerror="window.injected=1">')
    expect(answer).to_contain_text("<script>window.injected=2</script> <b>plain</b>")
    assert answer.locator("img, script, b").count() == 0
    assert page.evaluate("window.injected") is None


def test_screenshot_of_finished_answers(relay, upstream, page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    relay.open()
    first = relay.ask("How does the relay stream? #fault=reasoning #chunks=40")
    assert relay.wait_finished(first) == "done"
    first.get_by_test_id("reasoning").locator("summary").click()
    second = relay.ask("And in one sentence? #chunks=14", model="glm-4.6")
    assert relay.wait_finished(second) == "done"
    page.mouse.move(0, 0)
    page.screenshot(path=str(ARTIFACTS / "answer.png"), full_page=True)
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=str(ARTIFACTS / "answer-dark.png"), full_page=True)
    assert (ARTIFACTS / "answer.png").stat().st_size > 10_000
