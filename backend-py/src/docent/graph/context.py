"""What one run needs beyond its state: who is asking, and how to reach their documents."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.retrieval.retriever import Retriever
from docent.retrieval.search import Mode, SearchHit

# A search by what it asks: the query, how many passages, which mode.
SearchKey = tuple[str, int, Mode]


@dataclass(frozen=True, slots=True)
class RunContext:
    """LangGraph's runtime context: per run, never checkpointed, never traced."""

    user_id: UUID
    sessions: async_sessionmaker[AsyncSession]
    retriever: Retriever
    # Called once the model has answered, before the run's checkpoint is written.
    on_answer: Callable[[], None] | None = None
    # Searches already under way (the question's, started as the run begins, so that it
    # overlaps loading the thread), each taken by the first search that asks the same.
    early_searches: dict[SearchKey, asyncio.Future[list[SearchHit]]] = field(default_factory=dict)
