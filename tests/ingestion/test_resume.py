"""Documents a restart left pending or processing are picked up at the next start."""

import hashlib
import uuid
from collections.abc import Callable

import psycopg

from docent.main import create_app
from docent.retrieval.embeddings import Embedder
from docent.settings import Settings
from tests.conftest import running
from tests.helpers import create_user


def _stranded(database_url: str, user_id: uuid.UUID, status: str, text: bytes) -> uuid.UUID:
    document_id = uuid.uuid4()
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "insert into documents (id, user_id, filename, title, content_type, size_bytes, content_hash, status)"
            " values (%s, %s, 'note.md', 'note.md', 'text/markdown', %s, %s, %s)",
            (document_id, user_id, len(text), hashlib.sha256(text).hexdigest(), status),
        )
        conn.execute(
            "insert into document_sources (document_id, user_id, data) values (%s, %s, %s)",
            (document_id, user_id, text),
        )
    return document_id


async def test_unfinished_documents_resume_at_start(
    make_settings: Callable[..., Settings], embedder: Embedder, database_url: str
) -> None:
    owner = create_user(database_url)
    processing = _stranded(database_url, owner, "processing", b"# A\n\nInterrupted mid-way.\n")
    pending = _stranded(database_url, owner, "pending", b"# B\n\nNever started.\n")

    async with running(create_app(make_settings(), embedder=embedder)) as served:
        await served.ingested()

    with psycopg.connect(database_url) as conn:
        statuses: dict[uuid.UUID, str] = dict(
            conn.execute("select id, status from documents where id = any(%s)", ([processing, pending],)).fetchall()
        )
    assert statuses == {processing: "ready", pending: "ready"}
