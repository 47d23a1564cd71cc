"""SQLModel tables: jobs, chunks, one message per recipient, raw reports (per page, and each one still to match),
balance snapshots."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Numeric, Text, UniqueConstraint, text, true
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Now, aware, in UTC (every timestamp in the database is UTC)."""
    return datetime.now(timezone.utc)


class Job(SQLModel, table=True):
    """One send request of a producer: an account, a kind, content and its recipients."""

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(max_length=24, unique=True)  # random prefix of every custom id of this job
    account: str = Field(max_length=64, index=True)
    provider: str = Field(max_length=32)
    kind: str = Field(max_length=32)
    status: str = Field(max_length=16, index=True)
    reason: str | None = Field(default=None, max_length=255)
    content: Any = Field(default=None, sa_column=Column(JSON))
    options: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    total: int = 0
    chunks: int = 0
    idempotency_key: str | None = Field(default=None, max_length=128, unique=True)
    send_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    # where this job's status webhooks go (resolved at submit: callback_url or the default); None: no events
    webhook_receiver_id: int | None = None
    # the route the job was submitted to (its chunks go through the route's accounts; `account` is its first)
    route: str | None = Field(default=None, max_length=64)
    # sending policy: what has not reached the provider by then is expired unsent; what a send window holds it for
    valid_until: datetime | None = None
    waiting: str | None = Field(default=None, max_length=128)
    waiting_until: datetime | None = Field(default=None, index=True)
    # recipients held back by policy (rejected or expired without a provider call), counted where it happens
    suppressed: int = 0
    capped: int = 0
    not_sent_in_time: int = 0


class Chunk(SQLModel, table=True):
    """One provider request: the messages of its job with `lo <= seq < hi`."""

    __table_args__ = (
        Index("ix_chunk_job_status", "job_id", "status"),
        Index("ix_chunk_status_due", "status", "next_attempt_at"),
        # chunks whose messages may still wait for reports (the sweeper's expiry works through them)
        Index("ix_chunk_open_status_updated", "status", "updated_at", postgresql_where=text("closed_at IS NULL"),
              sqlite_where=text("closed_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id")
    parent_id: int | None = None  # set on the halves of a chunk split to isolate a refused number
    lo: int
    hi: int
    status: str = Field(max_length=16)
    attempts: int = 0
    request_id: str | None = Field(default=None, max_length=64)  # reused on every retry (ihuyi dedups it)
    request_id_at: datetime | None = None  # when request_id was first used: the provider forgets it after a while
    ambiguous_at: datetime | None = None  # the provider may have accepted a try of this chunk (never resend blindly)
    provider_task_id: str | None = Field(default=None, max_length=64)
    error_code: str | None = Field(default=None, max_length=64)
    error_desc: str | None = Field(default=None, max_length=255)
    next_attempt_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None  # every message final (or expired by the sweeper): nothing left to wait for
    account: str | None = Field(default=None, max_length=64)  # a route job's: the account it goes through


class Message(SQLModel, table=True):
    """One recipient of a job, with its normalised status and the provider's own words beside it."""

    __table_args__ = (
        UniqueConstraint("custom_id", name="uq_message_custom_id"),
        Index("ix_message_job_seq", "job_id", "seq"),
        # by mobile, not by provider_msg_id: a report that names no custom id is found by its mobile and id; only
        # the messages of a provider whose ids name a request have an entry (migration 0015)
        Index("ix_message_found_by_mobile", "mobile", postgresql_where=text("found_by_mobile"),
              sqlite_where=text("found_by_mobile")),
        # no index on status or provider_msg_id: neither the send's answer nor a report touch an index (HOT
        # updates: each page keeps room for the next two versions of every row, fillfactor 30, migrations 0005,
        # 0012 and 0014)
        {"postgresql_with": {"fillfactor": 30}},
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id")
    seq: int
    mobile: str = Field(max_length=32)
    content: str | None = Field(default=None, sa_column=Column(Text))
    custom_id: str = Field(max_length=64)
    provider_msg_id: str | None = Field(default=None, max_length=64)
    status: str = Field(max_length=16)
    provider_state: str | None = Field(default=None, max_length=64)
    provider_desc: str | None = Field(default=None, max_length=255)
    submitted_at: datetime | None = None
    reported_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    account: str | None = Field(default=None, max_length=64)  # a route job's: the account it was handed to
    #: its reports name a request and a mobile (qyxs, ihuyi: `ids_name_requests`), not our custom id, so they find
    #: it by its mobile; written with the row and never changed (true unless the writer says otherwise)
    found_by_mobile: bool = Field(default=True, sa_column_kwargs={"server_default": true()})


class RawReport(SQLModel, table=True):
    """A delivery report that matched no message when it came (one sent before its answer was recorded), kept
    with what matching needs until it is matched; reports matched at once are kept in their `ReportPage` only."""

    __table_args__ = (
        # what is still to match, only: a matched report (nearly all) costs no entry (migration 0005)
        Index("ix_rawreport_unmatched", "received_at", postgresql_where=text("matched = false"),
              sqlite_where=text("matched = 0")),
    )

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=64)
    provider: str = Field(max_length=32)
    source: str = Field(max_length=8)  # poll | push
    provider_msg_id: str | None = Field(default=None, max_length=64)
    custom_id: str | None = Field(default=None, max_length=64)
    mobile: str | None = Field(default=None, max_length=32)
    status: str = Field(max_length=16)
    state: str | None = Field(default=None, max_length=64)
    desc: str | None = Field(default=None, max_length=255)
    reported_at: datetime | None = None
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow)
    matched: bool = False
    message_id: int | None = None


class ReportPage(SQLModel, table=True):
    """A batch of delivery reports exactly as received (a drained page or more, a push), and the message each one
    settled when it came: every report received is in one page. One row, not a row a report: a million reports
    write about 30 MB of WAL instead of 400 (the JSON compresses tenfold)."""

    __table_args__ = (Index("ix_reportpage_account_received", "account", "received_at"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=64)
    provider: str = Field(max_length=32)
    source: str = Field(max_length=8)  # poll | push
    size: int  # reports in the page
    reports: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # each as received
    message_ids: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # None: not matched
    received_at: datetime = Field(default_factory=utcnow)


class BalanceSnapshot(SQLModel, table=True):
    """An account's balance as the provider gave it at one moment."""

    __table_args__ = (Index("ix_balance_account_taken", "account", "taken_at"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=64)
    provider: str = Field(max_length=32)
    product: str | None = Field(default=None, max_length=64)
    amount: Decimal = Field(sa_column=Column(Numeric(18, 4), nullable=False))
    raw: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    taken_at: datetime = Field(default_factory=utcnow)


class InboundMessage(SQLModel, table=True):
    """A message a recipient sent back (MO), from any provider; `dedup_key` makes repeated deliveries one row."""

    __table_args__ = (
        UniqueConstraint("account", "dedup_key", name="uq_inbound_account_dedup"),
        Index("ix_inbound_stored", "stored_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=64)
    provider: str = Field(max_length=32)
    mobile: str = Field(max_length=32)
    content: str = Field(sa_column=Column(Text, nullable=False))
    dest_code: str | None = Field(default=None, max_length=32)
    task_id: str | None = Field(default=None, max_length=64)
    received_at: datetime | None = None  # the provider's time
    stored_at: datetime = Field(default_factory=utcnow)
    dedup_key: str = Field(max_length=128)
    raw: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Template(SQLModel, table=True):
    """A provider-side content template (ihuyi MMS) and its audit status."""

    __table_args__ = (UniqueConstraint("account", "template_id", name="uq_template_account_template_id"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=64)
    provider: str = Field(max_length=32)
    template_id: str = Field(max_length=64)  # the provider's id
    title: str | None = Field(default=None, max_length=255)
    status: str = Field(max_length=16)  # pending | approved | rejected
    message: str | None = Field(default=None, max_length=255)  # the audit's words
    content: Any = Field(default=None, sa_column=Column(JSON))  # frames without media bytes
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class JobCount(SQLModel, table=True):
    """How many messages of a job are in one status: kept by database triggers on `message` (migration 0004).

    PostgreSQL appends one delta row per statement and job/status (no hot row to lock; `compact` folds them);
    SQLite upserts one row per job and status. Either way a job's count is `sum(n)` over its rows.
    """

    __tablename__ = "job_count"
    __table_args__ = (Index("ix_job_count_job", "job_id"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int
    status: str = Field(max_length=16)
    n: int = Field(sa_column=Column(BigInteger, nullable=False))
