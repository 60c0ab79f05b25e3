"""SQLModel tables mirroring `supabase/migrations` (a test fails when the two drift)."""

from datetime import datetime
from uuid import UUID

from sqlalchemy import Column, DateTime, Text, func
from sqlmodel import Field, SQLModel


class Profile(SQLModel, table=True):
    __tablename__ = "profiles"

    id: UUID = Field(primary_key=True)
    email: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    display_name: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()))
