"""Regressions from review: duplicate races, retries, encodings, titles, small libraries, provider failures."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest

from docent.main import create_app
from docent.retrieval.embeddings import Embedder
from docent.settings import Settings
from tests.conftest import InProcess, running
from tests.helpers import claims, create_user, hs256


def _auth(user_id: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {hs256(claims(user_id))}"}


@pytest.fixture
async def served(make_settings: Callable[..., Settings], embedder: Embedder) -> AsyncIterator[InProcess]:
    async with running(create_app(make_settings(), embedder=embedder)) as app:
        yield app


async def _upload(served: InProcess, user: uuid.UUID, name: str, data: bytes, **form: Any) -> Any:
    files = {"file": (name, data, "application/octet-stream")}
    return await served.http.post("/documents", headers=_auth(user), files=files, data=form)


async def test_concurrent_duplicates_resolve_to_one_document(served: InProcess, database_url: str) -> None:
    owner = create_user(database_url)
    responses = await asyncio.gather(*(_upload(served, owner, "same.md", b"# Same\n\nbytes\n") for _ in range(6)))
    assert {response.status_code for response in responses} <= {200, 202}
    assert len({response.json()["id"] for response in responses}) == 1


async def test_uploading_a_failed_document_again_retries_it(served: InProcess, database_url: str) -> None:
    owner = create_user(database_url)
    script_only = b"<html><body><script>x()</script></body></html>"
    first = await _upload(served, owner, "page.html", script_only)
    await served.ingested()
    document_id = first.json()["id"]
    assert (await served.http.get(f"/documents/{document_id}", headers=_auth(owner))).json()["status"] == "failed"
    again = await _upload(served, owner, "page.html", script_only)
    assert (again.status_code, again.json()["id"], again.json()["status"]) == (202, document_id, "pending")
    await served.ingested()


async def test_html_without_a_charset_keeps_its_characters(served: InProcess, database_url: str) -> None:
    owner = create_user(database_url)
    html = "<html><body><h1>Grüße</h1><p>Café crème, naïve façade, 東京.</p></body></html>".encode()
    response = await _upload(served, owner, "greeting.html", html)
    await served.ingested()
    with psycopg.connect(database_url) as conn:
        [(content,)] = conn.execute("select content from chunks where document_id = %s", (response.json()["id"],))
    assert content == "Café crème, naïve façade, 東京."


async def test_xhtml_with_an_encoding_declaration_is_read(served: InProcess, database_url: str) -> None:
    owner = create_user(database_url)
    xhtml = (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0'
        ' Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd"><html'
        ' xmlns="http://www.w3.org/1999/xhtml"><head><title>8.4. Binary Data Types</title></head>'
        "<body><h2>8.4. Binary Data Types</h2><p>The bytea type stores binary strings — “hex” format.</p></body></html>"
    ).encode()
    response = await _upload(served, owner, "datatype-binary.html", xhtml)
    await served.ingested()
    document = (await served.http.get(f"/documents/{response.json()['id']}", headers=_auth(owner))).json()
    assert (document["status"], document["title"], document["chunk_count"]) == ("ready", "8.4. Binary Data Types", 1)


async def test_titles_are_cleaned_and_invisible_filenames_refused(served: InProcess, database_url: str) -> None:
    owner = create_user(database_url)
    titled = await _upload(served, owner, "a.md", b"# A\n\ntext\n", title="Re\x00port\u202e\u200b  2024\x1b")
    assert (titled.status_code, titled.json()["title"]) == (202, "Report 2024")
    refused = await _upload(served, owner, "rlo\u202egnp.md", b"text")
    assert (refused.status_code, refused.json()["error"]) == (422, "bad_filename")
    long_heading = b"# " + b"x" * 900 + b"\n\nbody\n"
    response = await _upload(served, owner, "long.md", long_heading)
    await served.ingested()
    document = (await served.http.get(f"/documents/{response.json()['id']}", headers=_auth(owner))).json()
    assert (document["status"], len(document["title"])) == ("ready", 500)


async def test_keyword_search_works_in_a_small_library(served: InProcess, database_url: str) -> None:
    owner = create_user(database_url)
    for name, text in (("a.md", "kangaroo facts"), ("b.md", "kangaroo habitat"), ("c.md", "koala diet")):
        await _upload(served, owner, name, f"# {name}\n\n{text}\n".encode())
    await served.ingested()
    found = await served.http.post("/search", headers=_auth(owner), json={"query": "kangaroo", "mode": "keyword"})
    assert sorted(hit["filename"] for hit in found.json()["results"]) == ["a.md", "b.md"]


async def test_a_failing_embedding_provider_is_a_clean_error(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    owner = create_user(database_url)
    settings = make_settings(
        embeddings="openai", openai_api_key="sk-test", openai_base_url="http://127.0.0.1:9/v1"
    )  # nothing listens on port 9
    async with running(create_app(settings)) as served:
        search = await served.http.post("/search", headers=_auth(owner), json={"query": "anything"})
        assert (search.status_code, search.json()["error"]) == (502, "upstream_failed")
        upload = await _upload(served, owner, "n.md", b"# N\n\nnote\n")
        await served.ingested()
        document = (await served.http.get(f"/documents/{upload.json()['id']}", headers=_auth(owner))).json()
    assert document["status"] == "failed"
    assert "embedding model" in document["error"]
