"""Helpers to run the agent through the HTTP API (its fixtures live in the root conftest)."""

import json
from typing import Any

import httpx
from fastapi import FastAPI

from docent.main import create_app
from docent.retrieval.embeddings import Embedder
from docent.settings import Settings
from tests.conftest import InProcess
from tests.helpers import claims, create_user, hs256

MANUAL = b"""# Vacuum

VACUUM reclaims storage occupied by dead tuples. Run it regularly, or rely on autovacuum.

# Indexes

A B-tree index speeds up equality and range lookups on sortable data.
"""


async def upload_manual(served: InProcess, headers: dict[str, str]) -> None:
    files = {"file": ("manual.md", MANUAL, "text/markdown")}
    response = await served.http.post("/documents", headers=headers, files=files)
    assert response.status_code == 202, response.text
    await served.ingested()


async def new_thread(http: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> str:
    response = await http.post("/threads", headers=headers, json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["thread_id"])


def run_body(question: str = "What does VACUUM do?", **extra: Any) -> dict[str, Any]:
    return {"assistant_id": "docent", "input": {"messages": [{"role": "user", "content": question}]}, **extra}


def parse_sse(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        events.append((fields["event"], json.loads(fields["data"])))
    return events


async def stream(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    thread_id: str,
    question: str = "What does VACUUM do?",
    **extra: Any,
) -> tuple[httpx.Response, list[tuple[str, Any]]]:
    response = await http.post(f"/threads/{thread_id}/runs/stream", headers=headers, json=run_body(question, **extra))
    events = parse_sse(response.text) if response.status_code == 200 else []
    return response, events


def app_with(settings: Settings, embedder: Embedder) -> FastAPI:
    return create_app(settings, embedder=embedder)


def other_user_headers(database_url: str) -> dict[str, str]:
    """Headers of a new user, known to auth.users."""
    return {"Authorization": f"Bearer {hs256(claims(create_user(database_url)))}"}
