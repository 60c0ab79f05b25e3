"""Configuration is validated once, and unsafe production settings refuse to start."""

import pytest
from pydantic import ValidationError

from docent.settings import LOCAL_JWT_SECRET, Settings

PRODUCTION = {"app_env": "production", "database_url": "postgresql://db.example/postgres"}


def test_development_defaults_work_with_nothing_set() -> None:
    settings = Settings()
    assert (settings.host, settings.port, settings.log_level) == ("127.0.0.1", 8000, "INFO")
    assert settings.database_url is None
    assert settings.hs256_secret is not None
    assert settings.hs256_secret.get_secret_value() == LOCAL_JWT_SECRET
    assert settings.jwt_issuer is None
    assert settings.migrations_dir.is_dir()


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co/")
    settings = Settings()
    assert (settings.port, settings.log_level) == (9001, "DEBUG")
    assert settings.jwt_issuer == "https://abc.supabase.co/auth/v1"
    assert settings.jwks_url == "https://abc.supabase.co/auth/v1/.well-known/jwks.json"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"supabase_jwt_secret": LOCAL_JWT_SECRET}, "local default"),
        ({}, "needs SUPABASE_URL"),
        ({"supabase_url": "https://x.supabase.co", "database_url": None}, "needs DATABASE_URL"),
    ],
)
def test_production_refuses_unsafe_settings(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate({**PRODUCTION, **overrides})


def test_staging_is_held_to_the_production_rules() -> None:
    with pytest.raises(ValidationError, match="local default"):
        Settings(app_env="staging", database_url="postgresql://x/y", supabase_jwt_secret=LOCAL_JWT_SECRET)


def test_a_configured_project_never_falls_back_to_the_local_secret() -> None:
    settings = Settings(supabase_url="https://abc.supabase.co")  # APP_ENV left at development
    assert settings.hs256_secret is None


def test_production_needs_https_for_the_jwks() -> None:
    with pytest.raises(ValidationError, match="https"):
        Settings.model_validate({**PRODUCTION, "supabase_url": "http://abc.supabase.co"})


def test_production_without_a_secret_has_no_hs256() -> None:
    settings = Settings.model_validate({**PRODUCTION, "supabase_url": "https://x.supabase.co"})
    assert settings.hs256_secret is None


@pytest.mark.parametrize(
    ("name", "value"), [("port", 0), ("port", 70000), ("app_env", "prod"), ("supabase_jwt_secret", "short")]
)
def test_bad_values_are_refused(name: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({name: value})


def test_secrets_do_not_print() -> None:
    settings = Settings(supabase_jwt_secret="x" * 40, database_url="postgresql://u:hunter2@h/db")
    assert "hunter2" not in repr(settings)
    assert "x" * 40 not in repr(settings)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"langsmith_tracing": True}, "LANGSMITH_TRACING=true needs LANGSMITH_API_KEY"),
        ({"openai_base_url": "localhost:11434/v1"}, "OPENAI_BASE_URL must be an http:// or https:// URL"),
    ],
)
def test_agent_settings_that_cannot_work_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**values)  # type: ignore[arg-type]


def test_a_chat_model_is_configured_by_a_key_or_a_base_url() -> None:
    assert not Settings().llm_configured
    assert Settings(openai_api_key="sk-x").llm_configured
    assert Settings(openai_base_url="http://localhost:11434/v1").llm_configured
