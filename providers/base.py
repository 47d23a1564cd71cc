"""What every provider shares: the account base, the kinds and pushes it declares, and the template.

A provider module has pure functions (``build_*_request``, ``parse_*``) and one ``Provider`` subclass that
declares its kinds, limits and account type and routes the flow's calls to those functions. The base
enforces the declared limits once, before any request is built: a kind's options, recipients per request,
content length, per-recipient content, mainland mobiles, mobiles told apart, custom ids. Nothing here or
in a provider module does I/O: the flow sends the requests (``providers.http``) and reads the database.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from models.statuses import Queue
from providers.common import (
    StateMap, check_contents, require_nonempty, shown, validate_custom_ids, validate_mainland_mobiles, validate_options,
    validate_unique_mobiles,
)
from providers.common import BEIJING  # noqa: F401  (re-exported: the providers' clock)
from providers.errors import InvalidInput, PermanentError
from providers.sending_rules import (
    DEFAULT_OPT_OUT_KEYWORDS, DEFAULT_TIMEZONE, REPLY_KINDS, Cap, Window, parse_caps, zone,
)
from providers.values import (  # noqa: F401  (the template's vocabulary, imported from here by providers)
    Accepted, Balance, ContentVerdict, HttpResponse, Inbound, Recipient, Report, Request, SendSpec, TemplateAudit,
)

CUSTOM_ID_MAX_CHARS = 64  # our own ids: the database column's width


@dataclass(frozen=True)
class KindSpec:
    """A job kind: its endpoint, recipients per request, queue, options and content limits."""

    endpoint: str
    max_recipients: int
    queue: Queue = Queue.BULK
    options: frozenset[str] = frozenset()
    #: characters of a text content (the job's and each recipient's); None: the provider checks its own shape
    content_max_chars: int | None = None
    #: recipients may carry their own content
    per_recipient_content: bool = False
    #: options the provider's document names but we refuse, each with what to do instead
    refused_options: Mapping[str, str] = field(default_factory=dict)


class Carries(StrEnum):
    """What a push delivers, so the receiver knows where to store it."""

    REPORTS = "reports"
    INBOUND = "inbound"
    TEMPLATE_AUDITS = "template_audits"


@dataclass(frozen=True)
class Push:
    """One push a provider makes to us: how to decode its body (account, headers, body) and what it carries."""

    decode: Callable[[Any, Mapping[str, str], bytes], list[Any]]
    carries: Carries


class AccountBase(BaseModel):
    """What every account of `accounts.toml` has; a provider's account type adds its credentials."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    provider: str
    base_url: str
    rate_limit: float | None = Field(default=None, gt=0, description="requests per second, across all workers")
    max_batch: int | None = Field(default=None, gt=0)
    poll_reports: bool = True
    callback_token: SecretStr | None = None
    # units one recipient costs at this provider; when set, a chunk the last known balance cannot cover pauses
    # its job before anything is sent (DESIGN §6.4). Unset: only the provider's own balance error pauses.
    balance_per_recipient: float | None = Field(default=None, gt=0)
    # the console warns when the last known balance is at or below this (at or below 0 when unset)
    low_balance: float | None = Field(default=None, ge=0)
    # sending policy (DESIGN §9): hours of sending, per kind too, in `timezone`; a cap per recipient; opt-out words
    timezone: str = DEFAULT_TIMEZONE
    send_window: str | None = None
    send_windows: dict[str, str] = Field(default_factory=dict)
    frequency_cap: str | list[str] | None = None
    opt_out_keywords: list[str] | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("send_window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        return None if value is None else str(Window.parse(value))

    @field_validator("send_windows")
    @classmethod
    def _windows(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for kind, text in value.items():
            try:
                out[kind] = str(Window.parse(text))
            except ValueError as exc:
                raise ValueError(f"{kind}: {exc}") from None
        return out

    @field_validator("frequency_cap")
    @classmethod
    def _caps(cls, value: str | list[str] | None) -> str | list[str] | None:
        parse_caps(value)
        return value

    @field_validator("opt_out_keywords")
    @classmethod
    def _words(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not w.strip() for w in value):
            raise ValueError("an opt-out keyword must not be empty")
        return value

    def tz(self) -> ZoneInfo:
        """The zone this account's windows and caps are read in."""
        return zone(self.timezone)

    def window_for(self, kind: str) -> Window | None:
        """The send window of a kind: its own, else the account's, else none."""
        text = self.send_windows.get(kind, self.send_window)
        return Window.parse(text) if text else None

    def caps(self) -> tuple[Cap, ...]:
        """The frequency caps per recipient (none when unset)."""
        return parse_caps(self.frequency_cap)

    def opt_out_words(self, kinds: Iterable[str]) -> tuple[str, ...]:
        """The replies that opt a mobile out: the account's own, else the default where recipients reply."""
        if self.opt_out_keywords is not None:
            return tuple(self.opt_out_keywords)
        return DEFAULT_OPT_OUT_KEYWORDS if REPLY_KINDS & set(kinds) else ()

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class Provider:
    """Template every provider follows; the flow calls only these methods.

    A subclass declares `name`, `account_type`, `kinds` and its traits, implements the hooks it has
    (`check_job`, `build_send_request`, `parse_send`, the queries), and may set a hook to a staticmethod or
    to one of the adapters below, as long as the flow's call still fits.
    """

    name: ClassVar[str]
    account_type: ClassVar[type[AccountBase]]
    kinds: ClassVar[Mapping[str, KindSpec]]
    custom_id_max_chars: ClassVar[int] = CUSTOM_ID_MAX_CHARS
    #: recipients are mainland mobiles (`1[3-9]` + 9 digits); otherwise the provider's `check_job` checks them
    mainland_mobiles: ClassVar[bool] = True
    #: reports name a recipient by request and mobile, so one mobile may appear once per job
    unique_mobiles: ClassVar[bool] = False
    #: report states → our statuses, with the fallback for a state the provider's document does not list
    report_states: ClassVar[StateMap]
    has_report_query: ClassVar[bool] = True
    report_page_size: ClassVar[int] = 1000
    has_inbound_query: ClassVar[bool] = False
    #: the provider answers a balance query (Emay international documents none)
    has_balance_query: ClassVar[bool] = True
    #: the provider deduplicates a request id, so a chunk keeps one and an ambiguous send is retried with it
    idempotent_request_id: ClassVar[bool] = False
    #: the provider ids a request, not a recipient: provider ids are `f"{task_id}:{mobile}"`
    ids_name_requests: ClassVar[bool] = False
    #: how long the provider remembers a request id (None: for ever, or it keeps none)
    request_id_window_s: ClassVar[float | None] = None
    #: the provider schedules by itself (a send time in the request): the job is sent at once, not held by beat
    native_schedule: ClassVar[bool] = False
    #: the provider checks a text for forbidden words (`build_content_check`, `parse_content_check`)
    has_content_check: ClassVar[bool] = False
    #: the option naming a provider-side template whose audit the flow checks at submit (ihuyi: template_id)
    template_option: ClassVar[str | None] = None
    #: the first path segment of this provider's push URLs (`/callbacks/<push_path>/<account>/<token>/…`)
    push_path: ClassVar[str | None] = None
    #: the pushes it makes, by the path segment after the token ("" for none)
    pushes: ClassVar[Mapping[str, Push]] = {}

    # --- what the flow calls; the base's part is final -------------------------------------------------

    def kind(self, kind: str) -> KindSpec:
        """The kind's spec, or InvalidInput naming `kind`."""
        spec = self.kinds.get(kind) if isinstance(kind, str) else None
        if spec is None:
            raise InvalidInput("kind", f"{self.name} sends kinds {', '.join(self.kinds)}; got {shown(kind)}")
        return spec

    def validate(self, spec: SendSpec, recipients: Sequence[Recipient]) -> None:
        """Refuse a job that breaks a declared limit or the provider's own rules, naming the field and rule."""
        kind = self.kind(spec.kind)
        for name, instead in kind.refused_options.items():
            if name in (spec.options or {}):
                raise InvalidInput(f"options.{name}", instead)
        validate_options(spec.kind, spec.options or {}, kind.options)
        require_nonempty(recipients)
        check_contents(spec.kind, spec.content, recipients, max_chars=kind.content_max_chars,
                       per_recipient=kind.per_recipient_content)
        self.check_job(spec, recipients)
        if self.mainland_mobiles:
            validate_mainland_mobiles(recipients)
        if self.unique_mobiles:
            validate_unique_mobiles(recipients)
        validate_custom_ids(recipients, self.custom_id_max_chars)

    def build_send(self, account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime, *,
                   request_id: str | None = None) -> Request:
        """The request that sends `batch`; a batch over the kind's limit or without custom ids is refused
        (PermanentError) before anything is built."""
        limit = self.kind(spec.kind).max_recipients
        if not 0 < len(batch) <= limit:
            raise PermanentError("BATCH_SIZE", f"{spec.kind} sends 1 to {limit} recipients per request, "
                                               f"got {len(batch)}")
        if not all(recipient.custom_id for recipient in batch):
            raise PermanentError("NO_CUSTOM_ID", "every recipient needs its custom_id before it is sent")
        return self.build_send_request(account, spec, batch, now, request_id)

    def max_batch(self, account: Any, kind: str) -> int:
        """Recipients per request for this account: the kind's limit, lowered by the account's `max_batch`."""
        limit = self.kinds[kind].max_recipients
        return min(limit, account.max_batch) if getattr(account, "max_batch", None) else limit

    def queue_for(self, kind: str, recipients: int) -> Queue:
        """The queue of a job of `kind` with this many recipients (default: the kind's own queue)."""
        return self.kinds[kind].queue

    # --- hooks a provider implements --------------------------------------------------------------------

    def normalise(self, spec: SendSpec, recipients: Sequence[Recipient]) -> list[Recipient]:
        """Recipients in the provider's own number format (default: as given); InvalidInput when impossible."""
        return list(recipients)

    def check_job(self, spec: SendSpec, recipients: Sequence[Recipient]) -> None:
        """The provider's own rules beyond the declared limits; default none."""

    def precheck(self, account: Any, spec: SendSpec) -> None:
        """Rules that depend on the account (e.g. its size cap); pure, default none."""

    def build_send_request(self, account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime,
                           request_id: str | None) -> Request:
        """The request for a batch already checked against the limits; `request_id` is the chunk's own."""
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

    def wants_content_check(self, account: Any) -> bool:
        """Whether a job's content is checked by the provider before the job is accepted; default never."""
        return False

    def build_content_check(self, account: Any, content: str) -> Request:
        """The request that asks the provider whether `content` holds forbidden words."""
        raise InvalidInput("account", f"{self.name} has no content check")

    def parse_content_check(self, response: HttpResponse) -> ContentVerdict:
        """The provider's verdict on the text, or a ProviderError."""
        raise NotImplementedError


# --- adapters: a module function as a template method ----------------------------------------------

def send_builder(build: Callable[[Any, SendSpec, Sequence[Recipient], datetime], Request]) -> Callable[..., Request]:
    """`build_send_request` from `build(account, spec, batch, now)`, for a provider that takes no request id."""
    def build_send_request(self: Provider, account: Any, spec: SendSpec, batch: Sequence[Recipient],
                           now: datetime, request_id: str | None) -> Request:
        """The request that sends `batch` (the provider has no request id: `request_id` is not sent)."""
        return build(account, spec, batch, now)
    return build_send_request


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
