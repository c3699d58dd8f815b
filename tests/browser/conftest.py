"""Real-browser fixtures: Debian's chromium driven by Playwright's sync API, and the page.

The browser is never downloaded: tests run against ``/usr/bin/chromium`` (CI installs it with
apt) and are skipped when it is missing. The page is served by the function itself from the
session ``stack`` (tests/conftest.py), so it is exactly what ``make run`` shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.stack import DevStack

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
PAGE_FILE = ROOT / "functions" / "relay" / "glm_relay" / "static" / "index.html"
ARTIFACTS = ROOT / "artifacts"
FINISHED = re.compile(r"^(done|error|stopped)$")


class Upstream:
    """The fake Zhipu server's introspection endpoints (``/_mock/*``)."""

    def __init__(self, origin: str) -> None:
        self.http = httpx.Client(base_url=origin, timeout=10, trust_env=False)

    def clear(self) -> None:
        self.http.delete("/_mock/requests").raise_for_status()

    def chat_requests(self) -> list[dict[str, Any]]:
        records = self.http.get("/_mock/requests").json()["requests"]
        return [r for r in records if r["path"].endswith("/chat/completions")]

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self.http.get("/_mock/stats").json()
        return result

    def close(self) -> None:
        self.http.close()


class RelayPage:
    """What a person does with the page, in the page's own words (its ``data-testid``s)."""

    def __init__(self, page: Any, stack: DevStack) -> None:
        self.page = page
        self.stack = stack

    def open(self, query: str = "", *, token: str | None = None, origin: str | None = None) -> None:
        """Open the page the way ``make run`` prints it: the token in the URL fragment."""
        token = self.stack.token if token is None else token
        base = origin or self.stack.url
        self.page.goto(f"{base}/{query}#token={token}")

    def by_id(self, testid: str, root: Any = None) -> Any:
        return (root or self.page).get_by_test_id(testid)

    def ask(self, question: str, model: str | None = None) -> Any:
        """Type the question, press Enter; returns the new exchange (by position, so it stays
        the same exchange when later ones are added)."""
        before = self.exchanges().count()
        if model is not None:
            self.by_id("model-select").select_option(model)
        box = self.by_id("question-input")
        box.fill(question)
        box.press("Enter")
        self.page.wait_for_function(
            "n => document.querySelectorAll('[data-testid=exchange]').length > n", arg=before
        )
        return self.exchanges().nth(before)

    def exchanges(self) -> Any:
        return self.by_id("exchanges").get_by_test_id("exchange")

    def wait_finished(self, exchange: Any, timeout: float = 15_000) -> str:
        from playwright.sync_api import expect

        expect(exchange).to_have_attribute("data-state", FINISHED, timeout=timeout)
        return str(exchange.get_attribute("data-state"))

    def raw_answer(self, exchange: Any) -> str:
        """The answer exactly as received (the rendering is built from this text)."""
        return str(exchange.get_by_test_id("answer-raw").evaluate("node => node.textContent"))

    def rendered_answer(self, exchange: Any) -> str:
        """The text of the rendered blocks (paragraphs, lists, code), one block per line."""
        script = "node => Array.from(node.children, block => block.textContent).join('\\n')"
        return str(exchange.get_by_test_id("answer").evaluate(script))

    def visible_answer(self, exchange: Any) -> str:
        return str(exchange.get_by_test_id("answer").inner_text())

    def error_code(self, exchange: Any) -> str:
        return str(exchange.get_by_test_id("error-code").inner_text())

    def set_endpoint(self, endpoint: str, token: str | None = None) -> None:
        self.by_id("settings-toggle").click()
        self.by_id("endpoint-input").fill(endpoint)
        if token is not None:
            self.by_id("token-input").fill(token)
        self.by_id("settings-save").click()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser profile per test (empty local storage), failing on any script error."""
    context = browser.new_context(viewport={"width": 960, "height": 760})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    yield tab
    context.close()
    assert not problems, problems


@pytest.fixture
def upstream(stack: DevStack) -> Iterator[Upstream]:
    """The fake upstream, its request record and counters cleared for this test."""
    assert stack.upstream is not None
    fake = Upstream(stack.upstream.origin)
    fake.clear()
    yield fake
    fake.close()


@pytest.fixture
def relay(page: Any, stack: DevStack) -> RelayPage:
    return RelayPage(page, stack)
