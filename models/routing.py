"""Routing state: accounts that are paused (balance, credentials, client IP) so their routes send elsewhere."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.tables import utcnow


class AccountPause(SQLModel, table=True):
    """An account that could not accept sends the last time it was tried, and why; gone once it is fixed."""

    __tablename__ = "account_pause"

    account: str = Field(max_length=64, primary_key=True)
    reason: str = Field(max_length=255)
    paused_at: datetime = Field(default_factory=utcnow)
