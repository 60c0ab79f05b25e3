"""The web page's server side: the page and its files (no token, right types, a strict
CSP), the public configuration, and the development sign-in route."""

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from langsmith.utils import LangSmithError

from docent.api.web import WEB
from docent.main import create_app
from docent.retrieval.embeddings import Embedder
from docent.settings import LOCAL_JWT_SECRET, Settings
from tests.conftest import running, serve_in_process
from tests.helpers import free_port
from tests.langsmith_standin import LangSmithStandIn

PRODUCTION = {"app_env": "production", "supabase_jwt_secret": "p" * 40}
SUPABASE = {"supabase_url": "https://abc.supabase.co", "supabase_jwt_secret": "s" * 40, "supabase_anon_key": "anon"}


async def _get(settings: Settings, embedder: Embedder, path: str) -> httpx.Response:
    async with serve_in_process(create_app(settings, embedder=embedder)) as http:
        return await http.get(path)


async def test_the_page_needs_no_token_and_carries_a_strict_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/static/app.js"></script>' in response.text
    policy = dict(part.split(" ", 1) for part in response.headers["content-security-policy"].split("; "))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_policy_lets_the_page_reach_supabase_only_when_configured(
    make_settings: Callable[..., Settings], embedder: Embedder
) -> None:
    response = await _get(make_settings(**SUPABASE), embedder, "/")
    assert "connect-src 'self' https://abc.supabase.co;" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/app.js", "text/javascript; charset=utf-8"),
        ("/static/chat.js", "text/javascript; charset=utf-8"),
        ("/static/app.css", "text/css; charset=utf-8"),
        ("/static/vendor/supabase.js", "text/javascript; charset=utf-8"),
    ],
)
async def test_static_files_are_served_with_their_types(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/static/missing.js",
        "/static/index.html",
        "/static/vendor/VERSIONS",
        "/static/%2e%2e/settings.py",
        "/static/%2e%2e/outside.js",  # a served type, outside the web folder
        "/static/app.js%00",
        "/static/",
    ],
)
async def test_nothing_else_is_served_from_the_package(client: httpx.AsyncClient, path: str) -> None:
    outside = WEB.parent / "outside.js"
    outside.write_text("// not part of the page\n")
    try:
        response = await client.get(path)
    finally:
        outside.unlink()
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_the_page_never_parses_untrusted_text_as_html() -> None:
    scripts = {path.name: path.read_text() for path in WEB.glob("*.js")}
    for name, source in scripts.items():
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{name} uses {sink}"


def test_the_vendored_supabase_js_matches_its_recorded_hash() -> None:
    name, version, path, algorithm, digest = (WEB / "vendor" / "VERSIONS").read_text().split()
    assert (name, version, path, algorithm) == ("@supabase/supabase-js", "2.119.0", "dist/umd/supabase.js", "sha256")
    assert hashlib.sha256((WEB / "vendor" / "supabase.js").read_bytes()).hexdigest() == digest


async def test_config_in_development(client: httpx.AsyncClient) -> None:
    response = await client.get("/web/config")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"dev_sign_in": True, "supabase_url": None, "supabase_anon_key": None, "langsmith": None}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (PRODUCTION, {"dev_sign_in": False, "supabase_url": None, "supabase_anon_key": None}),
        (SUPABASE, {"dev_sign_in": True, "supabase_url": "https://abc.supabase.co", "supabase_anon_key": "anon"}),
        # Beside a real project without SUPABASE_JWT_SECRET, no development token can be minted.
        ({"supabase_url": "https://abc.supabase.co"}, {"dev_sign_in": False, "supabase_url": None}),
        ({**PRODUCTION, **SUPABASE}, {"dev_sign_in": False, "supabase_anon_key": "anon"}),
    ],
)
async def test_config_names_the_sign_in_methods_in_force(
    make_settings: Callable[..., Settings], embedder: Embedder, overrides: dict[str, Any], expected: dict[str, Any]
) -> None:
    body = (await _get(make_settings(**overrides), embedder, "/web/config")).json()
    assert {key: body[key] for key in expected} == expected


async def test_config_links_runs_to_their_langsmith_traces(
    make_settings: Callable[..., Settings], embedder: Embedder
) -> None:
    standin = LangSmithStandIn()
    settings = make_settings(langsmith_tracing=True, langsmith_api_key="lsv2_key", langsmith_endpoint=standin.url)
    with standin.running():
        async with running(create_app(settings, embedder=embedder)) as served:
            await served.state["tracing"].project_record()  # looked up in the background from the start
            body = (await served.http.get("/web/config")).json()
    project = standin.project
    # The form of langsmith's Client.get_run_url; a loopback API's web app is http://localhost.
    template = f"http://localhost/o/{project['tenant_id']}/projects/p/{project['id']}/r/{{run_id}}?poll=true"
    assert body["langsmith"] == {"project": "docent", "run_url_template": template}


async def test_config_never_waits_for_a_langsmith_that_is_down_nor_asks_it_again_at_once(
    make_settings: Callable[..., Settings], embedder: Embedder
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(langsmith_tracing=True, langsmith_api_key="lsv2_key", langsmith_endpoint=endpoint)
    async with running(create_app(settings, embedder=embedder)) as served:
        tracing = served.state["tracing"]
        with pytest.raises(LangSmithError):
            await tracing.project_record()  # the start-up lookup, failed
        failed = tracing._lookup
        for _ in range(3):
            response = await served.http.get("/web/config")
            assert response.status_code == 200
            assert response.json()["langsmith"] is None
        assert tracing._lookup is failed, "no new lookup within a minute of a failed one"


async def test_local_sign_in_mints_what_docent_token_mints(client: httpx.AsyncClient) -> None:
    first = await client.post("/web/dev-token", json={"email": " grace@example.com "})
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    body = first.json()
    assert (body["email"], body["expires_in"]) == ("grace@example.com", 8 * 3600)
    claims = jwt.decode(body["access_token"], LOCAL_JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["email"] == "grace@example.com"
    assert claims["role"] == "authenticated"

    me = await client.get("/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == "grace@example.com"
    again = (await client.post("/web/dev-token", json={"email": "grace@example.com"})).json()
    assert jwt.decode(again["access_token"], options={"verify_signature": False})["sub"] == claims["sub"]


@pytest.mark.parametrize("email", ["grace", "a@b@c", "two words@example.com", ""])
async def test_local_sign_in_needs_an_email(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post("/web/dev-token", json={"email": email})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "body.email", "message": "must be an email address, such as ada@example.com"}
    ]


@pytest.mark.parametrize("overrides", [PRODUCTION, {"app_env": "staging", "supabase_jwt_secret": "p" * 40}])
async def test_local_sign_in_is_absent_outside_development(
    make_settings: Callable[..., Settings], embedder: Embedder, overrides: dict[str, Any]
) -> None:
    async with serve_in_process(create_app(make_settings(**overrides), embedder=embedder)) as http:
        response = await http.post("/web/dev-token", json={"email": "grace@example.com"})
        page = await http.get("/")
    assert response.status_code == 404
    assert page.status_code == 200
