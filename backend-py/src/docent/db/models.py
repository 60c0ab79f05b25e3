"""SQLModel tables mirroring `supabase/migrations` (a test fails when the two drift)."""

from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

from pgvector.sqlalchemy import Vector
from sqlalchemy import BigInteger, Column, Computed, Date, DateTime, Float, Identity, LargeBinary, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlmodel import Field, SQLModel

EMBEDDING_DIMENSIONS = 384


def _timestamp() -> Any:
    """A `timestamptz not null default now()` column (a new Column object per table)."""
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()))


class Profile(SQLModel, table=True):
    __tablename__ = "profiles"

    id: UUID = Field(primary_key=True)
    email: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    display_name: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class Document(SQLModel, table=True):
    __tablename__ = "documents"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    user_id: UUID
    filename: str
    title: str
    content_type: str
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    content_hash: str
    status: str = "pending"
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    chunk_count: int = 0
    created_at: datetime | None = _timestamp()
    updated_at: datetime | None = _timestamp()


class DocumentSource(SQLModel, table=True):
    __tablename__ = "document_sources"

    document_id: UUID = Field(primary_key=True)
    user_id: UUID
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Chunk(SQLModel, table=True):
    __tablename__ = "chunks"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    document_id: UUID
    user_id: UUID
    ordinal: int
    title: str
    heading_path: list[str] = Field(sa_column=Column(ARRAY(Text), nullable=False))
    content: str
    search_vector: str | None = Field(
        default=None, sa_column=Column(TSVECTOR, Computed("", persisted=True), nullable=False)
    )
    embedding: list[float] | None = Field(default=None, sa_column=Column(Vector(EMBEDDING_DIMENSIONS), nullable=True))
    embedding_model: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime | None = _timestamp()


class Thread(SQLModel, table=True):
    __tablename__ = "threads"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    user_id: UUID
    title: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The database's default, not the model's: users may not insert a status (see migrations).
    status: str = Field(default="idle", sa_column=Column(Text, nullable=False, server_default="idle"))
    metadata_: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSONB, nullable=False, server_default="{}")
    )
    locked_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    lease_run_id: UUID | None = None
    created_at: datetime | None = _timestamp()
    updated_at: datetime | None = _timestamp()


class Run(SQLModel, table=True):
    __tablename__ = "runs"

    id: UUID = Field(primary_key=True)
    thread_id: UUID
    user_id: UUID
    assistant_id: str
    status: str = "pending"
    multitask_strategy: str = "reject"
    metadata_: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSONB, nullable=False, server_default="{}")
    )
    error_kind: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # as `__error__` names it
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    input_tokens: int = 0
    output_tokens: int = 0
    created_at: datetime | None = _timestamp()
    updated_at: datetime | None = _timestamp()
    # Set by a cancel sent to another replica (its notification may be lost; see signals).
    cancel_requested_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class RunFeedback(SQLModel, table=True):
    __tablename__ = "run_feedback"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    run_id: UUID
    user_id: UUID
    key: str
    score: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime | None = _timestamp()


class RunStart(SQLModel, table=True):
    __tablename__ = "run_starts"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True))
    user_id: UUID
    started_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )


class UsageDaily(SQLModel, table=True):
    __tablename__ = "usage_daily"

    user_id: UUID = Field(primary_key=True)
    day: date = Field(sa_column=Column(Date, primary_key=True))
    input_tokens: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    output_tokens: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    runs: int = 0
