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


def _position() -> Column:
    """A BIGINT part of an event's (xid, id) position, 0 by default."""
    return Column(BigInteger, nullable=False, server_default=text("0"))


#: the receiver URL is at most this long (kept unique, so it fits a btree entry)
URL_MAX_CHARS = 2000


class WebhookReceiver(SQLModel, table=True):
    """A producer's webhook URL; jobs point at one (resolved at submit: `callback_url` or the default)."""

    __tablename__ = "webhook_receiver"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=URL_MAX_CHARS, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    # the last event claimed into a delivery, as its (xid, id): every event after it is still to be sent
    cursor_xid: int = Field(default=0, sa_column=_position())
    cursor_id: int = Field(default=0, sa_column=_position())


class WebhookEvent(SQLModel, table=True):
    """One status change to tell a receiver about, written by triggers in the transaction of the change.

    The row keeps what may change again before delivery (status, provider state and text, a job's reason and
    counts); what never changes (custom id, mobile, account, kind) is joined when the body is built. `id` is the
    event's stable id and, per message, its `seq` (row locks order the changes of one message, so ids do too).
    Rows are never changed: a receiver's cursor and each delivery's range say what was claimed (migration 0007).
    `xid` is the writing transaction's id on PostgreSQL (a column default) and 0 on SQLite (one writer at a time,
    so ids commit in order); events are claimed in (xid, id) order, only from transactions older than every one
    still running, so none can commit behind a cursor.
    """

    __tablename__ = "webhook_event"
    __table_args__ = (
        # what a claim and a delivery's body read: a receiver's events in (xid, id) order
        Index("ix_webhook_event_receiver_order", "receiver_id", "xid", "id"),
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
    xid: int = Field(default=0, sa_column=_position())


class WebhookDelivery(SQLModel, table=True):
    """One signed POST of a receiver's events: those after (after_xid, after_id) up to (last_xid, last_id) in the
    receiver's (xid, id) order; a retry sends the same events (same ids), signed afresh."""

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
    after_xid: int = Field(default=0, sa_column=_position())
    after_id: int = Field(default=0, sa_column=_position())
    last_xid: int = Field(default=0, sa_column=_position())
    last_id: int = Field(default=0, sa_column=_position())
