"""A document deleted while it is processed stops being embedded at the next batch."""

import asyncio
import threading
from collections.abc import Callable

import psycopg
from langchain_core.embeddings import Embeddings

from docent.ingestion.pipeline import EMBED_BATCH
from docent.main import create_app
from docent.retrieval.embeddings import Embedder
from docent.settings import Settings
from tests.conftest import running
from tests.helpers import claims, create_user, hs256


class _HeldFirstCall(Embeddings):
    """The real model, whose first call waits until released; counts the texts it embeds."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.embedded = 0
        self.started = threading.Event()
        self.release = threading.Event()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not self.started.is_set():
            self.started.set()
            assert self.release.wait(timeout=30)
        self.embedded += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


async def test_a_document_deleted_while_it_is_embedded_stops_at_the_next_batch(
    make_settings: Callable[..., Settings], embedder: Embedder, database_url: str
) -> None:
    held = _HeldFirstCall(embedder.embeddings)
    owner = create_user(database_url)
    headers = {"Authorization": f"Bearer {hs256(claims(owner))}"}
    sections = 3 * EMBED_BATCH  # a chunk each
    text = "".join(f"# Section {n}\n\nParagraph number {n} says something of its own.\n\n" for n in range(sections))
    app = create_app(make_settings(), embedder=Embedder(embedder.name, held))
    async with running(app) as served:
        files = {"file": ("long.md", text.encode(), "text/markdown")}
        document_id = (await served.http.post("/documents", headers=headers, files=files)).json()["id"]
        assert await asyncio.to_thread(held.started.wait, 30)
        deleted = await served.http.delete(f"/documents/{document_id}", headers=headers)
        assert deleted.status_code == 204
        held.release.set()
        await served.ingested()

    assert held.embedded == EMBED_BATCH  # the batch in progress, and nothing after it
    with psycopg.connect(database_url) as conn:
        left = conn.execute("select count(*) from chunks where document_id = %s", (document_id,)).fetchone()
    assert left == (0,)
