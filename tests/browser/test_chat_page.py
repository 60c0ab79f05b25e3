"""The web page in Chromium: sign in, upload, a streamed answer with a citation, reload,
another user's view, errors in words, and hostile text shown as text."""

import re
import threading
from collections.abc import Callable

import pytest
from playwright.sync_api import FilePayload, Page, expect

from tests.agent import MANUAL
from tests.browser.conftest import Session, new_email
from tests.scripted_openai import Reply, ScriptedOpenAI

pytestmark = pytest.mark.browser
OPEN_VACUUM = re.compile(r"^What does VACUUM do\?")  # the conversation's title, then its time
INGESTED = 90_000  # ms: the local embedding model on a busy 2-core machine
HOSTILE = b"""# <img src=x onerror="document.title='pwned'"> Tricks

<script>document.title = 'pwned'</script> VACUUM hides <b>markup</b> in this passage.
"""
HOSTILE_TITLE = "<img src=x onerror=\"document.title='pwned'\"> Tricks"


def _upload(page: Page, name: str, content: bytes) -> None:
    page.get_by_label("Add documents").set_input_files(FilePayload(name=name, mimeType="text/markdown", buffer=content))
    document = page.locator(".document").filter(has_text="ready")
    expect(document).to_have_count(1, timeout=INGESTED)


def _ask(page: Page, question: str) -> None:
    box = page.get_by_role("textbox", name="Your question")
    box.fill(question)
    box.press("Enter")


def test_a_conversation_streams_cites_and_survives_a_reload(
    open_session: Callable[[], Session], model: ScriptedOpenAI
) -> None:
    email = new_email("ada")
    ada = open_session()
    page = ada.page
    ada.sign_in(email)
    _upload(page, "manual.md", MANUAL)
    expect(page.locator(".document .document-title")).to_have_text(["Vacuum"])

    gate = threading.Event()
    model.script.append(Reply("VACUUM reclaims storage occupied by dead tuples [1].", gate=gate))
    _ask(page, "What does VACUUM do?")
    answer = page.locator(".answer")
    # The first word is on the page while the model still holds back the rest: streamed.
    expect(answer).to_have_attribute("aria-busy", "true")
    expect(answer.locator(".text")).to_have_text("VACUUM ")
    expect(page.get_by_role("textbox", name="Your question")).to_have_value("")
    gate.set()
    expect(answer.locator(".text")).to_have_text("VACUUM reclaims storage occupied by dead tuples [1].")
    expect(answer).not_to_have_attribute("aria-busy", "true")

    page.get_by_role("button", name="Source 1: Vacuum").click()
    passage = page.get_by_role("dialog")
    expect(passage).to_contain_text("VACUUM reclaims storage occupied by dead tuples.")
    page.keyboard.press("Escape")
    expect(passage).to_be_hidden()

    page.get_by_role("button", name="Good answer").click()
    expect(page.get_by_text("Thanks for your feedback.")).to_be_visible()
    expect(page.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "true")

    model.script.extend([  # the model searches again, in its own words
        Reply(tool_calls=[("search_documents", {"query": "B-tree", "k": 1})]),
        Reply("B-trees speed up lookups [1]."),
    ])  # fmt: skip
    _ask(page, "And indexes?")
    expect(page.locator(".answer .text").nth(1)).to_have_text("B-trees speed up lookups [1].")

    page.reload()
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()
    page.get_by_role("button", name=OPEN_VACUUM).click()
    expect(page.locator(".question .text")).to_have_text(["What does VACUUM do?", "And indexes?"])
    expect(page.locator(".answer .text")).to_have_text(
        ["VACUUM reclaims storage occupied by dead tuples [1].", "B-trees speed up lookups [1]."]
    )
    # Every answer read back keeps its own citations, not only the last.
    expect(page.locator(".answer").first.get_by_role("button", name="Source 1: Vacuum")).to_be_visible()
    page.locator(".answer").nth(1).get_by_role("button", name=re.compile(r"^Source 1: ")).click()
    expect(page.get_by_role("dialog")).to_contain_text("B-tree index speeds up")
    page.keyboard.press("Escape")

    page.get_by_role("button", name="Delete conversation “What does VACUUM do?”").click()
    expect(page.locator(".threads")).to_have_text("No conversations yet.")
    expect(page.locator(".messages .turn")).to_have_count(0)
    page.get_by_role("button", name="Delete Vacuum").click()
    expect(page.locator(".documents")).to_have_text("No documents yet.")


def test_another_user_sees_none_of_the_first_users_documents_or_conversations(
    open_session: Callable[[], Session],
) -> None:
    ada = open_session()
    ada.sign_in(new_email("ada"))
    _upload(ada.page, "manual.md", MANUAL)
    _ask(ada.page, "What does VACUUM do?")
    expect(ada.page.locator(".answer .text")).to_contain_text("According to your documents, VACUUM reclaims")
    expect(ada.page.get_by_role("button", name=OPEN_VACUUM)).to_be_visible()

    bob = open_session()
    bob.sign_in(new_email("bob"))
    expect(bob.page.locator(".documents")).to_have_text("No documents yet.")
    expect(bob.page.locator(".threads")).to_have_text("No conversations yet.")
    _ask(bob.page, "What does VACUUM do?")
    expect(bob.page.locator(".answer .text")).to_have_text("I could not find this in your documents.")
    expect(bob.page.locator(".threads .thread")).to_have_count(1)


def test_a_failing_model_is_reported_in_words_and_the_question_is_kept(
    open_session: Callable[[], Session], model: ScriptedOpenAI
) -> None:
    alice = open_session()
    page = alice.page
    alice.sign_in(new_email("alice"))
    model.script.append(Reply(failure="status_500"))
    _ask(page, "What does VACUUM do?")

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Your message is kept in the conversation; ask again to retry.")
    expect(page.get_by_role("textbox", name="Your question")).to_have_value("What does VACUUM do?")
    expect(page.locator(".question .text")).to_have_text(["What does VACUUM do?"])
    expect(page.locator(".answer.failed")).to_have_count(1)

    page.get_by_role("textbox", name="Your question").press("Enter")  # asking again is one key
    expect(page.locator(".answer:not(.failed) .text")).to_have_text("I could not find this in your documents.")
    expect(alert).to_be_hidden()


def _held_answer(open_session: Callable[[], Session], model: ScriptedOpenAI, name: str) -> tuple[Page, threading.Event]:
    """A new user's page with an answer streaming: its first word shown, the rest held at the gate."""
    session = open_session()
    session.sign_in(new_email(name))
    gate = threading.Event()
    model.script.append(Reply("VACUUM reclaims storage occupied by dead tuples.", gate=gate))
    _ask(session.page, "What does VACUUM do?")
    expect(session.page.locator(".answer .text")).to_have_text("VACUUM ")  # the model holds back the rest
    return session.page, gate


def test_stop_ends_the_answer_and_the_question_is_kept(
    open_session: Callable[[], Session], model: ScriptedOpenAI
) -> None:
    page, gate = _held_answer(open_session, model, "grace")
    answer = page.locator(".answer")
    page.get_by_role("button", name="Stop").click()
    expect(answer.get_by_text("Stopped. This unfinished answer is not saved.")).to_be_visible()
    expect(answer).not_to_have_attribute("aria-busy", "true")
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    expect(page.get_by_role("alert")).to_be_hidden()
    gate.set()  # the scripted model's held reply goes nowhere: its connection was closed

    # The question was saved with the thread; the unfinished answer was not.
    page.reload()
    page.get_by_role("button", name=OPEN_VACUUM).click()
    expect(page.locator(".question .text")).to_have_text(["What does VACUUM do?"])
    expect(page.locator(".answer")).to_have_count(0)
    _ask(page, "What does VACUUM do?")
    expect(page.locator(".answer .text")).to_have_text("I could not find this in your documents.")


def test_leaving_a_conversation_mid_answer_leaves_the_answer_to_finish(
    open_session: Callable[[], Session], model: ScriptedOpenAI
) -> None:
    page, gate = _held_answer(open_session, model, "hedy")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()

    page.get_by_role("button", name="New conversation").click()
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()  # Stop is for the answer on screen
    expect(page.get_by_role("button", name="Ask")).to_be_disabled()  # until the answer left behind ends
    gate.set()
    expect(page.get_by_role("button", name="Ask")).to_be_enabled()
    page.get_by_role("button", name=OPEN_VACUUM).click()
    expect(page.locator(".answer .text")).to_have_text("VACUUM reclaims storage occupied by dead tuples.")


def test_html_in_documents_and_answers_is_shown_as_text(
    open_session: Callable[[], Session], model: ScriptedOpenAI
) -> None:
    mallory = open_session()
    page = mallory.page
    mallory.sign_in(new_email("mallory"))
    _upload(page, "tricks.md", HOSTILE)
    expect(page.locator(".document .document-title")).to_have_text([HOSTILE_TITLE])

    model.script.append(Reply("<img src=x onerror=\"document.title='pwned'\"> says <b>VACUUM</b> [1]"))
    _ask(page, "What does the passage hide?")
    answer = page.locator(".answer .text")
    expect(answer).to_have_text("<img src=x onerror=\"document.title='pwned'\"> says <b>VACUUM</b> [1]")
    page.locator(".answer button.cite").click()
    passage = page.get_by_role("dialog")
    expect(passage.get_by_role("heading")).to_have_text(HOSTILE_TITLE)
    expect(passage).to_contain_text("<script>document.title = 'pwned'</script> VACUUM hides <b>markup</b>")

    assert page.locator("main img, nav img, dialog img, main b, dialog b, main script").count() == 0
    assert page.title() == "Docent"


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (
            429,
            {"error": "rate_limited", "detail": "At most 20 runs a minute; try again shortly."},
            "You have reached a limit: At most 20 runs a minute; try again shortly. You can ask again in 42 seconds.",
        ),
        (
            409,
            {"error": "thread_busy", "detail": "Thread is already running a task."},
            "This conversation is still answering the previous question. Wait for it to finish, then ask again.",
        ),
    ],
)
def test_a_refused_question_is_explained_and_kept(
    open_session: Callable[[], Session], status: int, body: dict[str, str], said: str
) -> None:
    # The refusals themselves are the API's (tests/runs); here, what the page makes of them.
    grace = open_session()
    page = grace.page
    grace.sign_in(new_email("grace"))
    headers = {"Retry-After": "42"} if status == 429 else {}
    page.route("**/runs/stream", lambda route: route.fulfill(status=status, json=body, headers=headers))
    _ask(page, "What does VACUUM do?")
    expect(page.get_by_role("alert")).to_have_text(said)
    expect(page.get_by_role("textbox", name="Your question")).to_have_value("What does VACUUM do?")
    expect(page.locator(".question")).to_contain_text("Not sent.")


def test_a_dropped_file_is_uploaded(open_session: Callable[[], Session]) -> None:
    lin = open_session()
    page = lin.page
    lin.sign_in(new_email("lin"))
    dropped = page.evaluate_handle(
        """() => {
            const transfer = new DataTransfer();
            transfer.items.add(new File(["# Dropped\\n\\nDragged in from the desktop."], "dropped.md",
                                        {type: "text/markdown"}));
            return transfer;
        }"""
    )
    page.locator("#drop-zone").dispatch_event("drop", {"dataTransfer": dropped})
    expect(page.locator(".document").filter(has_text="ready")).to_have_text(re.compile("^Dropped"), timeout=INGESTED)


def test_an_expired_session_returns_to_sign_in(open_session: Callable[[], Session]) -> None:
    kay = open_session()
    page = kay.page
    kay.sign_in(new_email("kay"))
    expired = {"error": "invalid_token", "detail": "token expired"}
    page.route("**/threads/search", lambda route: route.fulfill(status=401, json=expired))
    page.get_by_role("button", name="New conversation").click()
    _ask(page, "Still there?")
    expect(page.get_by_role("status")).to_have_text("Your session has ended. Sign in again.")
    expect(page.get_by_role("textbox", name="Email for local sign-in")).to_be_visible()
