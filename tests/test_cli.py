"""The `docent` command in-process: token, migrate, and its refusals."""

import uuid

import jwt
import psycopg
import pytest
from typer.testing import CliRunner

from docent.cli import cli
from docent.db.migrations import discover
from docent.settings import LOCAL_JWT_SECRET
from tests.conftest import MIGRATIONS


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", database_url)
    return CliRunner()


def test_token_mints_a_gotrue_shaped_token_and_creates_the_user(runner: CliRunner, database_url: str) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    result = runner.invoke(cli, ["token", "--email", email, "--ttl", "600"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    claims = jwt.decode(token, LOCAL_JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["email"] == email
    assert claims["role"] == "authenticated"
    assert claims["exp"] - claims["iat"] == 600
    assert {"session_id", "aal", "amr", "app_metadata", "user_metadata", "is_anonymous"} <= set(claims)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select id::text from auth.users where email = %s", (email,)).fetchone()
    assert row == (claims["sub"],)

    again = runner.invoke(cli, ["token", "--email", email])
    assert jwt.decode(again.stdout.strip(), options={"verify_signature": False})["sub"] == claims["sub"]


def test_token_is_refused_outside_development(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SUPABASE_JWT_SECRET", "p" * 40)
    result = runner.invoke(cli, ["token", "--email", "a@example.com"])
    assert result.exit_code == 2
    assert "refused outside APP_ENV=development" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("email", ["not-an-email", "a@b c", ""])
def test_token_needs_an_email(runner: CliRunner, email: str) -> None:
    result = runner.invoke(cli, ["token", "--email", email])
    assert result.exit_code == 2


def test_invalid_configuration_is_one_clear_line(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "eighty")
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 2
    assert result.stderr.startswith("docent: invalid configuration: port:")
    assert "Traceback" not in result.output


def test_migrate_reports_nothing_to_do_on_a_current_database(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "applied 0 migration(s)"


def test_migrate_applies_pending_files(runner: CliRunner, monkeypatch: pytest.MonkeyPatch, empty_database: str) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_database)
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    assert f"applied {len(discover(MIGRATIONS))} migration(s)" in result.stdout
