"""The page offers the relay's models (from ``GET /v1/models``, its default chosen) and a
thinking switch that follows the model and is sent as the ``thinking`` query parameter."""

from __future__ import annotations

from playwright.sync_api import expect

from glm_relay.chat.models import CATALOGUE
from mock_upstream.answer import expected_chunks, expected_reasoning_chunks


def options(relay) -> list[str]:
    return list(relay.by_id("model-select").evaluate("s => Array.from(s.options, o => o.value)"))


def test_models_come_from_the_relay_and_its_default_is_chosen(relay, upstream) -> None:
    relay.open()

    expect(relay.by_id("model-select")).to_have_value("glm-4-flash")  # the stack's default
    assert options(relay) == list(CATALOGUE)
    switch = relay.by_id("thinking-switch")
    expect(switch).to_be_disabled()  # glm-4-flash does not reason
    expect(switch).not_to_be_checked()

    relay.by_id("model-select").select_option("glm-5.3")
    expect(switch).to_be_disabled()  # glm-5.3 always reasons
    expect(switch).to_be_checked()
    assert upstream.chat_requests() == []


def test_thinking_switch_reaches_the_upstream(relay, upstream) -> None:
    relay.open()
    expect(relay.by_id("model-select")).to_have_value("glm-4-flash")
    relay.by_id("model-select").select_option("glm-4.7-flash")
    switch = relay.by_id("thinking-switch")
    expect(switch).to_be_enabled()
    expect(switch).to_be_checked()

    switch.uncheck()
    quiet = relay.ask("Without thinking #chunks=4")
    assert relay.wait_finished(quiet) == "done"
    switch.check()
    thoughtful = relay.ask("With thinking #chunks=4")
    assert relay.wait_finished(thoughtful) == "done"

    off, on = (r["body"] for r in upstream.chat_requests())
    assert (off["model"], off["thinking"]) == ("glm-4.7-flash", {"type": "disabled"})
    assert (on["model"], on["thinking"]) == ("glm-4.7-flash", {"type": "enabled"})
    assert relay.raw_answer(quiet) == "".join(expected_chunks(off))
    expect(quiet.get_by_test_id("reasoning")).to_be_hidden()
    reasoning = "".join(expected_reasoning_chunks(on))
    assert reasoning
    text = thoughtful.get_by_test_id("reasoning-text").evaluate("n => n.textContent")
    assert text == reasoning
    # The choice is kept for the next visit.
    relay.page.reload()
    relay.by_id("model-select").select_option("glm-4.7-flash")
    expect(relay.by_id("thinking-switch")).to_be_checked()


def test_a_question_asked_before_the_model_list_arrives_gets_the_relays_default(
    relay, upstream
) -> None:
    held: list = []
    # The relay's list is held back: it has not arrived when the question is asked.
    relay.page.route("**/v1/models", lambda route: held.append(route))
    relay.open()

    exchange = relay.ask("Early question #chunks=3")
    assert relay.wait_finished(exchange) == "done"
    for route in held:
        route.continue_()

    (sent,) = upstream.chat_requests()
    assert sent["body"]["model"] == "glm-4-flash"  # the stack's default, not the page's guess
    expect(relay.by_id("answer-model", exchange)).to_have_text("glm-4-flash")
