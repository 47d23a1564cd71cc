"""What every provider module shares: request/response values, the provider template, the HTTP boundary.

A provider module has pure functions (``build_*_request``, ``parse_*``) and one ``Provider`` subclass that
declares its kinds and limits and routes the flow's calls to those functions: a function whose arguments
already match a template method is bound as ``staticmethod(function)``, the adapters below cover argument
lists that differ in the same way across providers, and only what really differs is written as a method.
Only :func:`http_send` here does I/O; it turns every ``requests`` exception into one of ``providers.errors``.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

import requests

from msgrelay.statuses import MessageStatus
from providers.errors import AmbiguousError, InvalidInput, RateLimited, TransientError

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # China keeps no daylight saving time


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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Report:
    """One delivery report, normalised, with the provider's own state, text and raw record."""

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
class KindSpec:
    """A job kind: its endpoint, recipients per request, queue and the options it accepts."""

    endpoint: str
    max_recipients: int
    queue: str = "bulk"
    options: frozenset[str] = frozenset()


class Provider:
    """Template every provider follows; the flow calls only these methods.

    A subclass may set any of them to a staticmethod or to one of the adapters below (``send_builder``,
    ``send_parser``, ``paged_query``, ``timeless_query``), as long as the flow's call still fits.
    """

    name: ClassVar[str]
    kinds: ClassVar[Mapping[str, KindSpec]]
    has_report_query: ClassVar[bool] = True
    report_page_size: ClassVar[int] = 1000
    has_inbound_query: ClassVar[bool] = False
    #: the provider answers a balance query (Emay international documents none)
    has_balance_query: ClassVar[bool] = True
    #: the provider deduplicates a request id, so a chunk keeps one and an ambiguous send is retried with it
    idempotent_request_id: ClassVar[bool] = False
    #: the provider schedules by itself (a send time in the request): the job is sent at once, not held by beat
    native_schedule: ClassVar[bool] = False

    def normalise(self, spec: SendSpec, recipients: Sequence[Recipient]) -> list[Recipient]:
        """Recipients in the provider's own number format (default: as given); InvalidInput when impossible."""
        return list(recipients)

    def validate(self, spec: SendSpec, recipients: Sequence[Recipient]) -> None:
        """Raise InvalidInput naming the field and rule; nothing is written before this passes."""
        raise NotImplementedError

    def precheck(self, account: Any, spec: SendSpec) -> None:
        """Checks that ask the provider before a job is accepted (e.g. a keyword check); default none."""

    def build_send(self, account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime, *,
                   request_id: str | None = None) -> Request:
        """The request that sends `batch` (at most the kind's limit); `request_id` is the chunk's own."""
        raise NotImplementedError

    def parse_send(self, spec: SendSpec, batch: Sequence[Recipient], response: HttpResponse) -> list[Accepted]:
        """The accepted recipients, or a ProviderError of the right family."""
        raise NotImplementedError

    def build_report_query(self, account: Any, now: datetime) -> Request:
        """The request that fetches the next page of reports."""
        raise NotImplementedError

    def parse_reports(self, response: HttpResponse) -> list[Report]:
        """The reports in one page."""
        raise NotImplementedError

    def build_balance_query(self, account: Any, now: datetime) -> Request:
        """The request that asks for the balance."""
        raise NotImplementedError

    def parse_balance(self, response: HttpResponse) -> list[Balance]:
        """The balance figures."""
        raise NotImplementedError

    def build_inbound_query(self, account: Any, now: datetime) -> Request:
        """The request that fetches inbound messages (providers with `has_inbound_query`)."""
        raise NotImplementedError

    def parse_inbound(self, response: HttpResponse) -> list[Inbound]:
        """The inbound messages in one answer."""
        raise NotImplementedError

    def decode_push(self, account: Any, headers: Mapping[str, str], body: bytes) -> list[Report]:
        """Reports from a pushed body; raise InvalidInput when it is not one."""
        raise InvalidInput("body", f"{self.name} does not push reports")

    def queue_for(self, kind: str, recipients: int) -> str:
        """The queue of a job of `kind` with this many recipients (default: the kind's own queue)."""
        return self.kinds[kind].queue

    def max_batch(self, account: Any, kind: str) -> int:
        """Recipients per request for this account: the kind's limit, lowered by the account's `max_batch`."""
        limit = self.kinds[kind].max_recipients
        return min(limit, account.max_batch) if getattr(account, "max_batch", None) else limit


# --- adapters: a module function as a template method ----------------------------------------------

def send_builder(build: Callable[[Any, SendSpec, Sequence[Recipient], datetime], Request]) -> Callable[..., Request]:
    """`build_send` from `build(account, spec, batch, now)`, for a provider that takes no request id."""
    def build_send(self: Provider, account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime, *,
                   request_id: str | None = None) -> Request:
        """The request that sends `batch` (the provider has no request id: `request_id` is not sent)."""
        return build(account, spec, batch, now)
    return build_send


def send_parser(parse: Callable[[HttpResponse, Sequence[Recipient]], list[Accepted]]) -> Callable[..., list[Accepted]]:
    """`parse_send` from `parse(response, batch)`."""
    def parse_send(self: Provider, spec: SendSpec, batch: Sequence[Recipient],
                   response: HttpResponse) -> list[Accepted]:
        """The accepted recipients, or a ProviderError of the right family."""
        return parse(response, batch)
    return parse_send


def paged_query(build: Callable[[Any, datetime, int], Request]) -> Callable[..., Request]:
    """`build_report_query` from `build(account, now, number)`, asking for the class's `report_page_size`."""
    def build_report_query(self: Provider, account: Any, now: datetime) -> Request:
        """The request for the next page of reports, `report_page_size` of them at most."""
        return build(account, now, self.report_page_size)
    return build_report_query


def timeless_query(build: Callable[[Any], Request]) -> Callable[..., Request]:
    """A query method from `build(account)`, for a request that carries no time (e.g. Emay's balance sign)."""
    def query(self: Provider, account: Any, now: datetime) -> Request:
        """The request, built from the account alone."""
        return build(account)
    return query


# --- the one HTTP boundary -------------------------------------------------------------------------

_local = threading.local()
CONNECT_TIMEOUT_S = 5.0


def _session() -> requests.Session:
    """One pooled session per thread (requests.Session is not thread-safe)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = session
    return session


def http_send(base_url: str, request: Request, *, read_timeout_s: float = 30.0) -> HttpResponse:
    """Send `request` and return the answer; connection faults become TransientError, a read timeout
    after sending becomes AmbiguousError, 429 RateLimited and 5xx TransientError."""
    url = base_url.rstrip("/") + request.path
    try:
        resp = _session().request(
            request.method, url, data=request.form, json=request.json, headers=dict(request.headers),
            timeout=(CONNECT_TIMEOUT_S, read_timeout_s),
        )
    except requests.exceptions.ConnectTimeout as exc:
        raise TransientError("CONNECT_TIMEOUT", f"{request.path}: {type(exc).__name__}") from None
    except requests.exceptions.ConnectionError as exc:
        # A connection refused/reset before the body was sent: nothing reached the provider.
        if isinstance(exc, requests.exceptions.ReadTimeout) or "Read timed out" in str(exc):
            raise AmbiguousError("READ_TIMEOUT", f"{request.path}: no answer in {read_timeout_s}s") from None
        raise TransientError("CONNECT_ERROR", f"{request.path}: {type(exc).__name__}") from None
    except requests.exceptions.Timeout:
        raise AmbiguousError("READ_TIMEOUT", f"{request.path}: no answer in {read_timeout_s}s") from None
    except requests.exceptions.RequestException as exc:
        raise TransientError("HTTP_ERROR", f"{request.path}: {type(exc).__name__}") from None
    if resp.status_code == 429:
        raise RateLimited("HTTP_429", request.path)
    if resp.status_code >= 500:
        raise TransientError(f"HTTP_{resp.status_code}", request.path)
    resp.encoding = resp.encoding or "utf-8"
    return HttpResponse(status=resp.status_code, text=resp.text, headers=dict(resp.headers))
