"""Every status and queue word of msgrelay, as StrEnums shared by models, flow, API and CLI.

No other module writes one of these words as a bare string: import it from here.
"""
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
#: statuses still waiting for something (a send or a report)
OPEN_MESSAGE_STATUSES = tuple(sorted(set(MessageStatus) - FINAL_MESSAGE_STATUSES))


class JobStatus(StrEnum):
    """A job's state; `paused` carries a reason (balance, credentials, operator)."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"


class PauseReason(StrEnum):
    """Why a job is paused: the first word of its `reason`."""

    BALANCE = "balance"
    CREDENTIALS = "credentials"
    OPERATOR = "operator"


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
    EXPIRED = "expired"  # its job's valid_until passed before it was sent: nothing went to the provider


class AccountHealth(StrEnum):
    """Whether a route may send through an account now (`paused`: refused for balance, credentials or client IP)."""

    OK = "ok"
    PAUSED = "paused"


class HeldBack(StrEnum):
    """Why policy kept a recipient from the provider: its `provider_state` (DESIGN §9)."""

    SUPPRESSED = "SUPPRESSED"
    FREQUENCY_CAP = "FREQUENCY_CAP"
    NOT_SENT_IN_TIME = "NOT_SENT_IN_TIME"


class TemplateStatus(StrEnum):
    """An ihuyi MMS template's audit state."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class DeliveryStatus(StrEnum):
    """A webhook delivery (one signed POST of up to 500 events): pending → sending → delivered | failing → … | dead."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILING = "failing"
    DEAD = "dead"


class Queue(StrEnum):
    """Celery queues: `otp` for latency-critical single sends, `bulk` for the rest, `poll` for beat's work,
    `webhooks` for producer status webhooks (a slow receiver never holds back sending or reports)."""

    OTP = "otp"
    BULK = "bulk"
    POLL = "poll"
    WEBHOOKS = "webhooks"
