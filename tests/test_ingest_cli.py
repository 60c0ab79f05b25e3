"""`docent ingest` and `docent eval` in-process against the test database."""

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docent.cli import cli


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


def test_eval_refuses_unknown_modes(runner: CliRunner, corpus: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text("")
    result = runner.invoke(cli, ["eval", "--questions", str(questions), "--corpus", str(corpus), "--mode", "psychic"])
    assert result.exit_code == 2
    assert "unknown mode" in result.output
