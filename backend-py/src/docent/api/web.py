"""The web chat page: its static files, the public configuration it reads, and (in
development only) the local sign-in that hands out development tokens. No token needed."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, field_validator

from docent.api.deps import AppSettings, AppTracing, Engine
from docent.api.json_body import StrictJSONRoute
from docent.auth.development import development_secret, development_token, is_email
from docent.errors import NotFound
from docent.settings import Settings

WEB = Path(__file__).resolve().parents[1] / "web"
DEV_TOKEN_TTL = timedelta(hours=8)
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_NO_SNIFF = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False, route_class=StrictJSONRoute)
dev_router = APIRouter(include_in_schema=False, route_class=StrictJSONRoute)


class LangSmithLinks(BaseModel):
    project: str
    run_url_template: str  # `{run_id}` is replaced by the run id (which is also the trace id)


class WebConfig(BaseModel):
    dev_sign_in: bool
    supabase_url: str | None
    supabase_anon_key: str | None
    langsmith: LangSmithLinks | None


class DevTokenRequest(BaseModel):
    email: str = Field(max_length=255)

    @field_validator("email")
    @classmethod
    def _an_email(cls, value: str) -> str:
        value = value.strip()
        if not is_email(value):
            raise ValueError("must be an email address, such as ada@example.com")
        return value


class DevToken(BaseModel):
    access_token: str
    expires_in: int
    email: str


def content_security_policy(settings: Settings) -> str:
    connect = ["'self'"]
    if settings.supabase_url:
        parts = urlsplit(settings.supabase_url)
        connect.append(f"{parts.scheme}://{parts.netloc}")
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        f"connect-src {' '.join(connect)}",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])  # fmt: skip


@router.get("/")
def page(settings: AppSettings) -> FileResponse:
    policy = content_security_policy(settings)
    headers = {**_NO_SNIFF, "Content-Security-Policy": policy, "Referrer-Policy": "no-referrer"}
    return FileResponse(WEB / "index.html", media_type="text/html; charset=utf-8", headers=headers)


@router.get("/static/{name:path}")
def static(name: str) -> FileResponse:
    if "\x00" in name:  # resolve() would raise on it
        raise NotFound("no such file")
    path = (WEB / name).resolve()
    if not path.is_relative_to(WEB) or path.suffix not in _TYPES or not path.is_file():
        raise NotFound("no such file")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_NO_SNIFF)


@router.get("/web/config")
async def config(settings: AppSettings, tracing: AppTracing, response: Response) -> WebConfig:
    response.headers["Cache-Control"] = "no-store"
    supabase = settings.supabase_url is not None and settings.supabase_anon_key is not None
    template = tracing.run_url_template() if tracing is not None else None
    return WebConfig(
        dev_sign_in=development_secret(settings) is not None,
        supabase_url=settings.supabase_url if supabase else None,
        supabase_anon_key=settings.supabase_anon_key if supabase else None,
        langsmith=LangSmithLinks(project=tracing.project, run_url_template=template)
        if tracing is not None and template is not None
        else None,
    )


@dev_router.post("/web/dev-token")
async def dev_token(body: DevTokenRequest, settings: AppSettings, engine: Engine, response: Response) -> DevToken:
    """What `docent token` prints, for the page's local sign-in (mounted only in development)."""
    secret = development_secret(settings)
    if secret is None:  # the router is not mounted then; this guards against a wiring mistake
        raise NotFound("not found")
    response.headers["Cache-Control"] = "no-store"
    async with engine.begin() as conn:
        token = await development_token(
            conn, secret=secret, email=body.email, ttl=DEV_TOKEN_TTL, issuer=settings.jwt_issuer
        )
    return DevToken(access_token=token, expires_in=int(DEV_TOKEN_TTL.total_seconds()), email=body.email)
