"""Chromium (Debian's) through Playwright, against `docent serve` with the scripted model."""

import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.helpers import serve_process
from tests.scripted_openai import ScriptedOpenAI

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedOpenAI]:
    server = ScriptedOpenAI()
    with server.running():
        yield server
        server.stop()


@pytest.fixture(scope="module")
def base_url(database_url: str, model: ScriptedOpenAI) -> Iterator[str]:
    env = {
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_API_KEY": "sk-scripted",
        "CHAT_MAX_RETRIES": "0",
    }
    with tempfile.TemporaryFile("w+") as log, serve_process(env, log=log) as (base, _):
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-browser` installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Session:
    """One person's browser context on the page, with the errors the page raised."""

    def __init__(self, context: BrowserContext, base_url: str) -> None:
        self.context = context
        self.page: Page = context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        self.page.on(
            "console",
            lambda message: self.problems.append(message.text) if "Content Security Policy" in message.text else None,
        )
        self.page.goto(base_url)

    def sign_in(self, email: str) -> None:
        page = self.page
        page.get_by_role("textbox", name="Email for local sign-in").fill(email)
        page.get_by_role("button", name="Sign in locally").click()
        expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()


@pytest.fixture
def open_session(browser: Browser, base_url: str, model: ScriptedOpenAI) -> Iterator[Callable[[], Session]]:
    model.script.clear()
    contexts: list[Session] = []

    def open_one() -> Session:
        session = Session(browser.new_context(), base_url)
        contexts.append(session)
        return session

    yield open_one
    for session in contexts:
        session.context.close()
    assert [p for s in contexts for p in s.problems] == []


def new_email(name: str) -> str:
    """Unique per test: the database is shared with the rest of the suite."""
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"
