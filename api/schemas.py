"""Request and answer bodies of the producer API."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RecipientIn(BaseModel):
    """One recipient with its own content or custom id."""

    model_config = ConfigDict(extra="forbid")
    mobile: str
    content: str | None = None
    custom_id: str | None = Field(default=None, max_length=64)


class JobIn(BaseModel):
    """POST /v1/jobs."""

    model_config = ConfigDict(extra="forbid")
    account: str
    kind: str
    content: Any = None
    recipients: list[str | RecipientIn] = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, max_length=128)
    send_at: datetime | None = None


class JobCreated(BaseModel):
    """202 answer of POST /v1/jobs."""

    id: int
    recipients: int
    chunks: int
    created: bool = True
    duplicates_removed: int = 0
