"""Retrieval benchmarks (`make bench`).

1. Ingestion throughput: a sample of the PostgreSQL manual through the whole pipeline
   (load, clean, chunk, embed, store as the owner), beside the embedding model alone on
   the same chunk texts, in the same run. The ratio is the figure.
2. Search at 100k chunks (synthetic clustered 384-d vectors): latency of the database
   part of a vector search run as the user (RLS, HNSW), p50/p95, and recall@10 against
   exact search, for a user who owns 99% of the chunks and one who owns 1%.
"""

import asyncio
import io
import statistics
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg

from docent.db.embedded import embedded_postgres
from docent.db.engine import create_engine, create_sessionmaker
from docent.db.migrations import migrate
from docent.db.session import user_transaction
from docent.ingestion.batch import ingest_files
from docent.ingestion.chunk import chunk_markdown
from docent.ingestion.clean import clean_text
from docent.ingestion.load import load
from docent.ingestion.pipeline import acting_as
from docent.retrieval.embeddings import create_embedder
from docent.retrieval.search import search_chunks
from docent.settings import Settings

REPO = Path(__file__).resolve().parents[2]
MIGRATIONS = REPO / "supabase" / "migrations"
ARCHIVE = REPO.parent / "shared" / "eval" / "postgresql-15-docs-html.tar.xz"
PAGES = 60  # every n-th page of the manual, for about 700 chunks
TOTAL, SMALL_SHARE, QUERIES, K = 100_000, 0.01, 200, 10


def _user(conn: psycopg.Connection[tuple[object, ...]]) -> uuid.UUID:
    user_id = uuid.uuid4()
    conn.execute("insert into auth.users (id, email) values (%s, %s)", (user_id, f"{user_id}@bench"))
    return user_id


def _sample_pages(workdir: Path) -> list[Path]:
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(workdir, filter="data")
    pages = sorted((workdir / "corpus").glob("*.html"))
    return pages[:: max(1, len(pages) // PAGES)][:PAGES]


async def bench_ingestion(url: str, workdir: Path) -> None:
    pages = _sample_pages(workdir)
    embedder = create_embedder(Settings())
    with psycopg.connect(url, autocommit=True) as conn:
        owner = _user(conn)
    engine = create_engine(url, pool_size=2)
    try:
        summary = await ingest_files(
            create_sessionmaker(engine), embedder, user_id=owner, files=pages, max_bytes=1 << 30
        )
    finally:
        await engine.dispose()
    texts = []
    for page in pages:
        loaded = load(page.read_bytes(), "text/html")
        texts += [d.embedding_text() for d in chunk_markdown(clean_text(loaded.markdown), title=loaded.title or "")]
    started = time.perf_counter()
    await embedder.embed_documents(texts)
    raw = len(texts) / (time.perf_counter() - started)
    pipeline = summary.chunks / summary.seconds
    print(f"ingestion: {len(pages)} manual pages, {summary.chunks} chunks")
    print(f"  pipeline {pipeline:.1f} chunks/s · embedding model alone {raw:.1f} chunks/s · ratio {pipeline / raw:.2f}")


def _vectors(rng: np.random.Generator, count: int, centers: np.ndarray) -> np.ndarray:
    picked = centers[rng.integers(0, len(centers), count)]
    vectors = picked + rng.normal(scale=0.08, size=(count, centers.shape[1]))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _load_synthetic(url: str, rng: np.random.Generator) -> tuple[uuid.UUID, uuid.UUID, np.ndarray]:
    centers = rng.normal(size=(2000, 384))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    vectors = _vectors(rng, TOTAL, centers)
    small_count = int(TOTAL * SMALL_SHARE)
    with psycopg.connect(url, autocommit=True) as conn:
        big, small = _user(conn), _user(conn)
        documents = {}
        for user_id in (big, small):
            documents[user_id] = conn.execute(
                "insert into documents (user_id, filename, title, content_type, size_bytes, content_hash, status)"
                " values (%s, 'synthetic', 'synthetic', 'text/plain', 1, %s, 'ready') returning id",
                (user_id, uuid.uuid4().hex),
            ).fetchone()[0]  # type: ignore[index]
        conn.execute("drop index chunks_embedding_idx")
        owners = [small if i % int(1 / SMALL_SHARE) == 0 else big for i in range(TOTAL)][:TOTAL]
        assert sum(owner == small for owner in owners) == small_count
        buffer = io.StringIO()
        for i, (owner, vector) in enumerate(zip(owners, vectors, strict=True)):
            literal = "[" + ",".join(f"{x:.5f}" for x in vector) + "]"
            buffer.write(f"{documents[owner]}\t{owner}\t{i}\tsynthetic\tchunk {i}\t{literal}\tsynthetic\n")
        started = time.perf_counter()
        with conn.cursor().copy(
            "copy chunks (document_id, user_id, ordinal, title, content, embedding, embedding_model) from stdin"
        ) as copy:
            copy.write(buffer.getvalue())
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("set maintenance_work_mem = '1GB'")
        conn.execute("set search_path = public, extensions")
        conn.execute("create index chunks_embedding_idx on chunks using hnsw (embedding vector_cosine_ops)")
        conn.execute(
            "update documents set chunk_count = (select count(*) from chunks c where c.document_id = documents.id)"
        )
        conn.execute("analyze chunks")
        print(
            f"synthetic: {TOTAL} chunks copied in {loaded:.1f} s, HNSW index built in {time.perf_counter() - started:.1f} s"
        )
    queries = _vectors(rng, QUERIES, centers)
    return big, small, queries


def _exact(url: str, user_id: uuid.UUID, query: np.ndarray) -> set[uuid.UUID]:
    literal = "[" + ",".join(f"{x:.6f}" for x in query) + "]"
    with psycopg.connect(url) as conn:
        conn.execute("set search_path = public, extensions; set enable_indexscan = off")
        rows = conn.execute(
            "select id from chunks where user_id = %s and embedding_model = 'synthetic'"
            " order by embedding <=> %s::vector limit %s",
            (user_id, literal, K),
        ).fetchall()
    return {row[0] for row in rows}


async def bench_search(url: str) -> None:
    rng = np.random.default_rng(7)
    big, small, queries = _load_synthetic(url, rng)
    engine = create_engine(url, pool_size=1)
    sessions = create_sessionmaker(engine)
    try:
        for label, user_id in (("user owning 99%", big), ("user owning 1%", small)):
            latencies, recalls, full = [], [], 0
            for query in queries:
                async with user_transaction(sessions, acting_as(user_id)) as session:
                    started = time.perf_counter()
                    hits = await search_chunks(
                        session, query="", embedding=query.tolist(), model="synthetic", k=K, mode="vector"
                    )
                    latencies.append((time.perf_counter() - started) * 1000)
                exact = _exact(url, user_id, query)
                recalls.append(len({hit.chunk_id for hit in hits} & exact) / K)
                full += len(hits) == K
            latencies.sort()
            print(
                f"  {label:16} p50 {statistics.median(latencies):5.1f} ms · p95 {latencies[int(len(latencies) * 0.95)]:5.1f} ms"
                f" · recall@10 {statistics.mean(recalls):.3f} · {K} of {K} in {full}/{len(queries)} queries"
            )
    finally:
        await engine.dispose()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, embedded_postgres(Path(tmp) / "db") as url:
        await migrate(url, MIGRATIONS)
        if "--search-only" not in sys.argv:
            await bench_ingestion(url, Path(tmp))
        await bench_search(url)


if __name__ == "__main__":
    asyncio.run(main())
