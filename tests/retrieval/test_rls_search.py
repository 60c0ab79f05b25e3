"""Chunk queries with no user filter at all still see only the caller's rows."""

import uuid

import psycopg
from sqlalchemy import text

from docent.db.engine import create_engine, create_sessionmaker
from docent.db.session import acting_as, user_transaction
from docent.retrieval.embeddings import Embedder
from docent.retrieval.search import search_chunks
from tests.helpers import create_user


def _document_with_chunk(database_url: str, user_id: uuid.UUID, content: str) -> None:
    document_id = uuid.uuid4()
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "insert into documents (id, user_id, filename, title, content_type, size_bytes, content_hash, status)"
            " values (%s, %s, 'f.md', 'F', 'text/markdown', 1, %s, 'ready')",
            (document_id, user_id, uuid.uuid4().hex),
        )
        conn.execute(
            "insert into chunks (document_id, user_id, ordinal, title, content) values (%s, %s, 0, 'F', %s)",
            (document_id, user_id, content),
        )


async def test_unfiltered_chunk_queries_are_scoped_by_rls(database_url: str, embedder: Embedder) -> None:
    alice, bob = create_user(database_url), create_user(database_url)
    _document_with_chunk(database_url, alice, "alice's secret sourdough recipe")
    _document_with_chunk(database_url, bob, "bob's tide tables")
    engine = create_engine(database_url, pool_size=1)
    try:
        async with user_transaction(create_sessionmaker(engine), acting_as(bob)) as session:
            connection = await session.connection()
            everything = await connection.execute(text("select distinct user_id from public.chunks"))
            assert list(everything.scalars()) == [bob]
            hits = await search_chunks(
                session, query="secret sourdough recipe", embedding=None, model=embedder.name, k=10, mode="keyword"
            )
            assert hits == []
    finally:
        await engine.dispose()
