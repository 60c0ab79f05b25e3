"""What one run needs beyond its state: who is asking, and how to reach their documents."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.retrieval.retriever import Retriever


@dataclass(frozen=True, slots=True)
class RunContext:
    """LangGraph's runtime context: per run, never checkpointed, never traced."""

    user_id: UUID
    sessions: async_sessionmaker[AsyncSession]
    retriever: Retriever
    # Called once the model has answered, before the run's checkpoint is written.
    on_answer: Callable[[], None] | None = None
    # Query embeddings already under way (the question's, started as the run begins, so that
    # it overlaps loading the thread), each taken by the first search for that query.
    early_embeddings: dict[str, asyncio.Future[list[float]]] = field(default_factory=dict)
