"""The status vocabularies shared by models, API and CLI."""
from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    """One recipient's state: queued → submitted → delivered | failed | expired; rejected; unknown."""

    QUEUED = "queued"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


#: statuses after which nothing more is expected (a late report may still turn expired into its truth)
FINAL_MESSAGE_STATUSES = frozenset(
    {MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.EXPIRED, MessageStatus.REJECTED}
)


class JobStatus(StrEnum):
    """A job's state; `paused` carries a reason (balance, credentials, operator)."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"


class ChunkStatus(StrEnum):
    """One provider request's state: pending → sending → sent | unknown | failed | rejected | split."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    UNKNOWN = "unknown"
    FAILED = "failed"
    REJECTED = "rejected"
    SPLIT = "split"
    CANCELLED = "cancelled"
