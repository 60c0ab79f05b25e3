"""Retrieval quality on a question set: recall@1, recall@k, MRR@10 and latency, per mode.

A retrieved chunk is a hit when it comes from one of the question's gold pages (matched
by file name). Latency covers embedding the question and the database query.
"""

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db.session import acting_as, user_transaction
from docent.retrieval.retriever import Retriever
from docent.retrieval.search import Mode


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    question: str
    gold_pages: frozenset[str]


@dataclass(frozen=True, slots=True)
class ModeReport:
    mode: Mode
    k: int
    recall_at_1: float
    recall_at_k: float
    mrr_at_10: float
    p50_ms: float
    p95_ms: float


def load_questions(path: Path) -> list[Question]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Question(row["id"], row["question"], frozenset(row["gold_pages"])) for row in rows]


async def evaluate(
    sessions: async_sessionmaker[AsyncSession],
    retriever: Retriever,
    *,
    user_id: UUID,
    questions: Sequence[Question],
    mode: Mode,
    k: int = 5,
) -> ModeReport:
    ranks: list[int | None] = []
    latencies: list[float] = []
    for question in questions:
        async with user_transaction(sessions, acting_as(user_id)) as session:
            started = time.perf_counter()
            hits = await retriever.search(session, query=question.question, k=max(k, 10), mode=mode)
            latencies.append((time.perf_counter() - started) * 1000)
        ranks.append(next((rank for rank, hit in enumerate(hits, 1) if hit.filename in question.gold_pages), None))
    count = len(questions)
    latencies.sort()
    return ModeReport(
        mode=mode,
        k=k,
        recall_at_1=sum(rank == 1 for rank in ranks) / count,
        recall_at_k=sum(rank is not None and rank <= k for rank in ranks) / count,
        mrr_at_10=sum(1 / rank for rank in ranks if rank is not None and rank <= 10) / count,
        p50_ms=statistics.median(latencies),
        p95_ms=latencies[min(count - 1, int(count * 0.95))],
    )
