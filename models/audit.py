"""The audit log (DESIGN §9 "API keys"): one row per operator action, written in the action's own transaction."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from models.tables import utcnow


class AuditEntry(SQLModel, table=True):
    """Who (`key`: an API key's name, `api-token`, `local` or `cli`) did what (`action`, e.g. `job.pause`) to what
    (`target`, e.g. `job:42`) and when; `detail` adds what the action said (never a secret)."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    key: str = Field(max_length=64)
    action: str = Field(max_length=32)
    target: str = Field(max_length=128)
    detail: str | None = Field(default=None, max_length=255)
