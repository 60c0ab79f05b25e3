"""`docent ingest` and `docent eval` in-process against the test database."""

import asyncio
import json
import re
import uuid
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from docent.cli import cli
from docent.db.engine import create_engine, create_sessionmaker
from docent.db.session import acting_as, user_transaction
from docent.retrieval.embeddings import Embedder
from docent.retrieval.search import Mode, search_chunks


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", database_url)
    return CliRunner()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    (folder / "nested").mkdir(parents=True)
    (folder / "bread.md").write_text("# Bread\n\nBake sourdough at 230 degrees for forty minutes.\n")
    (folder / "nested" / "tides.html").write_text(
        "<html><head><title>Tides</title></head><body><p>The moon's gravity raises ocean tides.</p></body></html>"
    )
    (folder / "empty.txt").write_text("")
    (folder / "ignored.png").write_bytes(b"\x89PNG")
    return folder


def test_ingest_reports_ready_unchanged_and_failed(runner: CliRunner, corpus: Path) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    first = runner.invoke(cli, ["ingest", "--email", email, str(corpus)])
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("2 ready, 0 unchanged, 1 failed; 2 chunks")
    assert "empty.txt: the file is empty" in first.stderr

    again = runner.invoke(cli, ["ingest", "--email", email, str(corpus / "bread.md")])
    assert again.stdout.startswith("0 ready, 1 unchanged, 0 failed")


def test_ingest_fails_when_nothing_could_be_ingested(runner: CliRunner, corpus: Path) -> None:
    result = runner.invoke(cli, ["ingest", "--email", "x@example.com", str(corpus / "empty.txt")])
    assert result.exit_code == 1


def test_eval_prints_a_table_per_mode(runner: CliRunner, corpus: Path, tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    rows = [
        {"id": "q1", "question": "How hot should the oven be for sourdough?", "gold_pages": ["bread.md"]},
        {"id": "q2", "question": "What makes the sea rise and fall?", "gold_pages": ["tides.html"]},
    ]
    questions.write_text("\n".join(json.dumps(row) for row in rows))
    email = f"eval-{uuid.uuid4().hex[:8]}@example.com"
    result = runner.invoke(
        cli, ["eval", "--questions", str(questions), "--corpus", str(corpus), "--sample", "0", "--email", email]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "corpus: 2 files, 2 ready, 0 failed" in lines
    table = {line.split(" | ")[0].strip("| "): line for line in lines if line.startswith("| ") and "mode" not in line}
    assert set(table) == {"keyword", "vector", "hybrid"}
    assert table["vector"].startswith("| vector | 1.00 | 1.00 | 1.00 |")


def test_eval_warns_of_documents_another_model_embedded(
    runner: CliRunner, corpus: Path, tmp_path: Path, database_url: str
) -> None:
    questions = tmp_path / "questions.jsonl"
    question = {"id": "q1", "question": "How hot should the oven be for sourdough?", "gold_pages": ["bread.md"]}
    questions.write_text(json.dumps(question))
    email = f"eval-{uuid.uuid4().hex[:8]}@example.com"
    arguments = ["eval", "--questions", str(questions), "--corpus", str(corpus), "--mode", "vector", "--email", email]
    first = runner.invoke(cli, arguments)
    assert first.exit_code == 0, first.output
    assert "warning" not in first.stderr
    with psycopg.connect(database_url) as conn:  # as if an earlier model had embedded the corpus
        conn.execute(
            "update chunks set embedding_model = 'retired-model'"
            " where user_id = (select id from auth.users where email = %s)",
            (email,),
        )
    again = runner.invoke(cli, arguments)
    assert again.exit_code == 0, again.output
    assert "warning: 2 document(s) were embedded by another model" in again.stderr
    assert "| vector | 0.00 |" in again.stdout


def test_eval_refuses_unknown_modes(runner: CliRunner, corpus: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text("")
    result = runner.invoke(cli, ["eval", "--questions", str(questions), "--corpus", str(corpus), "--mode", "psychic"])
    assert result.exit_code == 2
    assert "unknown mode" in result.output


async def test_reindex_re_embeds_what_another_model_embedded(
    runner: CliRunner, corpus: Path, database_url: str, embedder: Embedder
) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    ingested = await asyncio.to_thread(runner.invoke, cli, ["ingest", "--email", email, str(corpus / "bread.md")])
    assert ingested.exit_code == 0
    with psycopg.connect(database_url) as conn:
        [(owner,)] = conn.execute("select id from auth.users where email = %s", (email,)).fetchall()
        conn.execute("update chunks set embedding_model = 'retired-model' where user_id = %s", (owner,))

    engine = create_engine(database_url, pool_size=1)
    try:
        async with user_transaction(create_sessionmaker(engine), acting_as(owner)) as session:
            query, embedding = "sourdough oven", await embedder.embed_query("sourdough oven")
            modes: list[tuple[Mode, int]] = [("vector", 0), ("keyword", 1)]
            for mode, expected in modes:
                hits = await search_chunks(
                    session, query=query, embedding=embedding, model=embedder.name, k=5, mode=mode
                )
                assert len(hits) == expected, mode
    finally:
        await engine.dispose()

    result = await asyncio.to_thread(runner.invoke, cli, ["reindex"])
    assert result.exit_code == 0, result.output
    # Other tests' chunks without embeddings are stale too: only this user's are certain.
    assert re.fullmatch(r"re-embedded \d+ chunk\(s\) in \d+ document\(s\)", result.stdout.strip())
    with psycopg.connect(database_url) as conn:
        models = conn.execute("select distinct embedding_model from chunks where user_id = %s", (owner,)).fetchall()
    assert models == [(embedder.name,)]
