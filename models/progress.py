"""Job progress snapshots: a running job's counts at the moments the sweeper looked, the points of the console's
delivery-over-time chart (read from the counters, never from the messages)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from models.tables import utcnow


class JobProgress(SQLModel, table=True):
    """A job's messages per status (`counts`) at `at`; written only when they changed since the last one."""

    __tablename__ = "job_progress"
    __table_args__ = (Index("ix_job_progress_job", "job_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int
    at: datetime = Field(default_factory=utcnow)
    counts: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
