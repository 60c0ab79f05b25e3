"""The one place configuration is read: environment variables, validated once at start-up."""

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The Supabase CLI's well-known local JWT secret: fine on a laptop, fatal anywhere else.
LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"  # noqa: S105

AppEnv = Literal["development", "staging", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def _repo_root() -> Path:
    # src/docent/settings.py -> backend-py -> repository root
    return Path(__file__).resolve().parents[3]


class Settings(BaseSettings):
    """Every knob Docent has; the README's configuration table documents each one."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    app_env: AppEnv = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: LogLevel = "INFO"

    database_url: SecretStr | None = None
    # Request traffic only (Supabase's transaction pooler); DATABASE_URL still serves the
    # checkpointer and migrations, which need a session.
    request_database_url: SecretStr | None = None
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # Stored conversations kept decoded in memory, by their stored size (db/checkpoint_serde.py).
    checkpoint_cache_mb: int = Field(default=32, ge=0, le=4096)
    data_dir: Path = Path(".data")
    migrations_dir: Path = Field(default_factory=lambda: _repo_root() / "supabase" / "migrations")

    supabase_url: str | None = None
    supabase_jwt_secret: SecretStr | None = None
    # Public by design (it ships to every browser); the web page signs in with it through supabase-js.
    supabase_anon_key: str | None = None

    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024)
    embeddings: Literal["local", "openai"] = "local"
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_embedding_model: str = "text-embedding-3-small"

    # The agent. With neither OPENAI_API_KEY nor OPENAI_BASE_URL, answers are extractive.
    chat_model: str = "gpt-4o-mini"
    chat_temperature: float = Field(default=0.1, ge=0, le=2)
    chat_max_tokens: int = Field(default=1024, ge=16, le=32768)
    chat_timeout_seconds: float = Field(default=60, gt=0, le=600)
    chat_max_retries: int = Field(default=1, ge=0, le=10)
    run_timeout_seconds: float = Field(default=120, gt=0, le=3600)
    max_tool_rounds: int = Field(default=4, ge=1, le=20)  # tool rounds a turn may make, the first search included
    search_first: bool = True  # search for the question before the model's first call (docs/decisions.md)
    chat_history_turns: int = Field(default=10, ge=0, le=100)  # earlier exchanges the model sees
    max_message_chars: int = Field(default=16_000, ge=100, le=1_000_000)
    daily_token_budget: int = Field(default=500_000, ge=0)  # per user; 0 = unlimited
    runs_per_minute: int = Field(default=20, ge=0)  # per user; 0 = unlimited
    # On SIGTERM: open streams may finish for this long, then runs still in flight for as long again.
    shutdown_timeout_seconds: float = Field(default=30, ge=0, le=3600)

    langsmith_tracing: bool = False
    langsmith_api_key: SecretStr | None = None
    langsmith_endpoint: str = "https://api.smith.langchain.com"
    langsmith_project: str = "docent"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("supabase_url", mode="before")
    @classmethod
    def _strip_url(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().rstrip("/") or None
        return value

    @field_validator(
        "database_url",
        "request_database_url",
        "supabase_jwt_secret",
        "supabase_anon_key",
        "openai_api_key",
        "openai_base_url",
        "langsmith_api_key",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> "Settings":
        secret = self.supabase_jwt_secret
        if secret is not None and len(secret.get_secret_value()) < 32:
            raise ValueError("SUPABASE_JWT_SECRET must be at least 32 characters")
        if self.embeddings == "openai" and self.openai_api_key is None:
            raise ValueError("EMBEDDINGS=openai needs OPENAI_API_KEY")
        if self.openai_base_url is not None and not self.openai_base_url.startswith(("http://", "https://")):
            raise ValueError("OPENAI_BASE_URL must be an http:// or https:// URL")
        if self.langsmith_tracing and self.langsmith_api_key is None:
            raise ValueError("LANGSMITH_TRACING=true needs LANGSMITH_API_KEY")
        if self.request_database_url is not None and self.database_url is None:
            raise ValueError("REQUEST_DATABASE_URL needs DATABASE_URL (the checkpointer and migrations use it)")
        if self.is_development:
            return self
        if secret is not None and secret.get_secret_value() == LOCAL_JWT_SECRET:
            raise ValueError(f"APP_ENV={self.app_env} refuses the local default SUPABASE_JWT_SECRET")
        if secret is None and self.supabase_url is None:
            raise ValueError(
                f"APP_ENV={self.app_env} needs SUPABASE_URL (JWKS) or SUPABASE_JWT_SECRET to verify tokens"
            )
        if self.database_url is None:
            raise ValueError(f"APP_ENV={self.app_env} needs DATABASE_URL (the embedded database is for development)")
        if self.supabase_url is not None and not self.supabase_url.startswith("https://"):
            raise ValueError(f"APP_ENV={self.app_env} needs an https:// SUPABASE_URL (the JWKS comes from it)")
        return self

    @property
    def is_development(self) -> bool:
        return self.app_env == "development"

    @cached_property
    def hs256_secret(self) -> SecretStr | None:
        """The HS256 secret in force: the configured one, or in development the local default."""
        # Never beside a real project: a forgotten APP_ENV must not enable a published secret.
        if self.supabase_jwt_secret is None and self.is_development and self.supabase_url is None:
            return SecretStr(LOCAL_JWT_SECRET)
        return self.supabase_jwt_secret

    @property
    def llm_configured(self) -> bool:
        """A chat model is configured; without one the agent answers extractively."""
        return self.openai_api_key is not None or self.openai_base_url is not None

    @property
    def jwt_issuer(self) -> str | None:
        return f"{self.supabase_url}/auth/v1" if self.supabase_url else None

    @property
    def jwks_url(self) -> str | None:
        return f"{self.supabase_url}/auth/v1/.well-known/jwks.json" if self.supabase_url else None


def get_settings() -> Settings:
    return Settings()
