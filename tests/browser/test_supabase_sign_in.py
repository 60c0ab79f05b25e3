"""Signing in through Supabase Auth: the vendored supabase-js, loaded under the page's CSP,
against a stand-in for the project's Auth server; the API accepts the session's token."""

import tempfile
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Session, new_email
from tests.helpers import create_user, serve_process
from tests.supabase_auth_standin import SupabaseAuthStandIn

pytestmark = pytest.mark.browser
SECRET = "a-project-secret-of-at-least-32-characters"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def auth() -> Iterator[SupabaseAuthStandIn]:
    standin = SupabaseAuthStandIn(SECRET)
    with standin.running():
        yield standin


@pytest.fixture(scope="module")
def base_url(database_url: str, auth: SupabaseAuthStandIn) -> Iterator[str]:
    env = {
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "SUPABASE_URL": auth.url,
        "SUPABASE_JWT_SECRET": SECRET,
        "SUPABASE_ANON_KEY": "anon-key-standin",
    }
    with tempfile.TemporaryFile("w+") as log, serve_process(env, log=log) as (base, _):
        yield base


def test_sign_in_with_supabase_auth(
    open_session: Callable[[], Session], auth: SupabaseAuthStandIn, database_url: str
) -> None:
    email = new_email("hedy")
    auth.accounts[email] = (PASSWORD, create_user(database_url, email))
    hedy = open_session()
    page = hedy.page
    form = page.locator("#supabase-form")
    form.get_by_role("textbox", name="Email").fill(email)
    form.get_by_label("Password").fill("wrong")
    form.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Sign-in failed: Invalid login credentials")

    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_label("Password").press("Enter")
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()
    expect(page.locator(".documents")).to_have_text("No documents yet.")  # the API took the token
    assert auth.sign_ins == 1

    page.reload()  # supabase-js keeps the session
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()
    expect(page.locator(".threads")).to_have_text("No conversations yet.")
    page.get_by_role("button", name="Sign out").click()
    expect(form.get_by_role("textbox", name="Email")).to_be_visible()
