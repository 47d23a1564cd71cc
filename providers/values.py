"""The values that cross the provider boundary: requests and answers, recipients and jobs, what a provider
accepted, reported, holds as balance, sent back, audited or found in a text. Plain frozen dataclasses."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from models.statuses import MessageStatus


@dataclass(frozen=True)
class Request:
    """One HTTP request to a provider, built by a pure function."""

    path: str
    form: Mapping[str, str] | None = None
    json: Any = None
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpResponse:
    """What came back: status code, body text and headers."""

    status: int
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)  # one per recipient: a million of them in a big job
class Recipient:
    """One recipient of a chunk; `content` is set for per-recipient content."""

    mobile: str
    custom_id: str
    content: str | None = None


@dataclass(frozen=True)
class SendSpec:
    """The job-wide part of a send: kind, content, options (provider's own names), scheduled time."""

    kind: str
    content: Any = None
    options: Mapping[str, Any] = field(default_factory=dict)
    send_at: datetime | None = None


@dataclass(frozen=True, slots=True)  # one per recipient: a million of them in a big job
class Accepted:
    """A recipient the provider accepted, with the id it gave; `task_id` when the provider ids whole requests.

    Providers that id a request rather than a recipient (ihuyi `task_id`, qyxs `taskID`) set
    `provider_msg_id` to ``f"{task_id}:{mobile}"``, the key their reports are matched by.
    """

    mobile: str
    custom_id: str | None
    provider_msg_id: str | None
    task_id: str | None = None


@dataclass(frozen=True)
class Inbound:
    """A message a recipient sent back (MO), as a provider gave it."""

    mobile: str
    content: str
    received_at: datetime | None = None
    dest_code: str | None = None
    task_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


class Report(NamedTuple):
    """One delivery report, normalised, with the provider's own state, text and raw record (a named tuple, not a
    frozen dataclass: a million are built per big job, and building one costs a quarter as much)."""

    status: MessageStatus
    state: str
    desc: str | None
    provider_msg_id: str | None
    custom_id: str | None
    mobile: str | None
    reported_at: datetime | None
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class Balance:
    """One balance figure (ihuyi has one per product)."""

    amount: Decimal
    product: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TemplateAudit:
    """One template-audit push: SUCCESS approves, FAIL rejects."""

    template_id: str
    code: str
    message: str | None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContentVerdict:
    """A provider's keyword check of a text: `ok`, and its own words (the hit text when not ok)."""

    ok: bool
    message: str
