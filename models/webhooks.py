"""Webhook tables: receivers (one row per URL), the event outbox (written by database triggers, migration 0006)
and deliveries (one signed POST of up to 500 events to one receiver, retried until delivered or dead)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, text
from sqlmodel import Field, SQLModel

from models.tables import utcnow

#: BIGINT on PostgreSQL (2,000,000 events a 1M job), INTEGER on SQLite (only that is the autoincrementing rowid)
EventId = BigInteger().with_variant(Integer(), "sqlite")
#: the receiver URL is at most this long (kept unique, so it fits a btree entry)
URL_MAX_CHARS = 2000


class WebhookReceiver(SQLModel, table=True):
    """A producer's webhook URL; jobs point at one (resolved at submit: `callback_url` or the default)."""

    __tablename__ = "webhook_receiver"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=URL_MAX_CHARS, unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class WebhookEvent(SQLModel, table=True):
    """One status change to tell a receiver about, written by triggers in the transaction of the change.

    The row keeps what may change again before delivery (status, provider state and text, a job's reason and
    counts); what never changes (custom id, mobile, account, kind) is joined when the body is built. `id` is the
    event's stable id and, per message, its `seq` (row locks order the changes of one message, so ids do too).
    """

    __tablename__ = "webhook_event"
    __table_args__ = (
        # what the claim reads: a receiver's unclaimed events in order (claimed ones leave the index)
        Index("ix_webhook_event_unclaimed", "receiver_id", "id", postgresql_where=text("delivery_id IS NULL"),
              sqlite_where=text("delivery_id IS NULL")),
        # a delivery's events (claimed ones only: an event is written without touching this index)
        Index("ix_webhook_event_delivery", "delivery_id", postgresql_where=text("delivery_id IS NOT NULL"),
              sqlite_where=text("delivery_id IS NOT NULL")),
    )

    id: int | None = Field(default=None, sa_column=Column(EventId, primary_key=True, autoincrement=True))
    receiver_id: int
    job_id: int
    message_id: int | None = None  # None: a job event
    type: str = Field(max_length=32)
    status: str = Field(max_length=16)
    provider_state: str | None = Field(default=None, max_length=64)
    provider_desc: str | None = Field(default=None, max_length=255)
    reason: str | None = Field(default=None, max_length=255)
    counts: Any = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)
    delivery_id: int | None = None


class WebhookDelivery(SQLModel, table=True):
    """One signed POST of a receiver's events; a retry sends the same events (same ids), signed afresh."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_receiver_status", "receiver_id", "status"),
        Index("ix_webhook_delivery_status_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    receiver_id: int
    status: str = Field(max_length=16)
    events: int = 0
    attempts: int = 0
    last_status: int | None = None  # the receiver's last HTTP status, when it answered
    last_error: str | None = Field(default=None, max_length=255)
    first_attempt_at: datetime | None = None
    next_attempt_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
