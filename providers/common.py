"""What the providers share, all pure: input rules, phone numbers, Beijing wire times and figures, status maps.

The input rules run at submission, before anything is written, over every recipient of a job (a million is
normal), so each is one pass with precompiled patterns and no I/O; each refusal is an InvalidInput naming
the field and the rule.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson
import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from models.statuses import MessageStatus
from providers.errors import InvalidInput, TransientError

if TYPE_CHECKING:
    from providers.values import Recipient

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # China keeps no daylight saving time



def loads(text: str | bytes) -> Any:
    """Decode JSON: orjson (five times faster on a page of reports), or `json` for what orjson refuses and the
    standard library reads (a lone surrogate escape, NaN); invalid JSON raises ValueError either way."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


# --- input rules ------------------------------------------------------------------------------------

# ASCII digits only: Python's \d also matches full-width and other Unicode digits the providers refuse,
# and fullmatch (not `$`) so a trailing newline is not let through.
MAINLAND_MOBILE = re.compile(r"1[3-9][0-9]{9}")
MAINLAND_MOBILE_RULE = "must be a mainland mobile number: 11 digits starting 13–19"


def shown(value: Any, limit: int = 24) -> str:
    """A short printable form of a refused value for an error's rule."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validate_mainland_mobiles(recipients: Sequence[Recipient]) -> None:
    """Refuse the first recipient whose mobile is not a mainland mobile number (^1[3-9]\\d{9}$)."""
    match = MAINLAND_MOBILE.fullmatch
    for i, recipient in enumerate(recipients):
        mobile = recipient.mobile
        if not isinstance(mobile, str) or match(mobile) is None:
            raise InvalidInput(f"recipients[{i}].mobile", f"{MAINLAND_MOBILE_RULE}, got {shown(mobile)}")


def validate_custom_ids(recipients: Sequence[Recipient], max_len: int) -> None:
    """Refuse custom ids longer than `max_len`, containing a comma (the lists are comma-separated),
    or used twice; an empty id means 'not assigned yet' and is left to the flow."""
    seen: set[str] = set()
    for i, recipient in enumerate(recipients):
        custom_id = recipient.custom_id
        if custom_id is None or custom_id == "":
            continue
        field = f"recipients[{i}].custom_id"
        if not isinstance(custom_id, str):
            raise InvalidInput(field, f"must be a string, got {type(custom_id).__name__}")
        if len(custom_id) > max_len:
            raise InvalidInput(field, f"at most {max_len} characters, got {len(custom_id)}")
        if "," in custom_id:
            raise InvalidInput(field, "must not contain a comma (the provider separates ids with commas)")
        if custom_id != custom_id.strip():
            raise InvalidInput(field, "must not start or end with whitespace")
        if custom_id in seen:
            raise InvalidInput(field, f"duplicate custom id {shown(custom_id)}: each recipient needs its own")
        seen.add(custom_id)


def validate_options(kind: str, options: Mapping[str, Any] | None, allowed: Iterable[str]) -> None:
    """Refuse an option the kind does not know, listing the ones it does."""
    known = sorted(allowed)
    for name in options or {}:
        if name not in known:
            listed = ", ".join(known) if known else "none"
            raise InvalidInput(f"options.{name}", f"unknown option for kind '{kind}'; known options: {listed}")


def require_text(field: str, value: Any, max_chars: int | None = None) -> str:
    """Return `value` if it is a non-blank string of at most `max_chars` characters, else refuse it."""
    if value is None:
        raise InvalidInput(field, "is required")
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(field, "is required: got blank text")
    if max_chars is not None and len(value) > max_chars:
        raise InvalidInput(field, f"at most {max_chars} characters, got {len(value)}")
    return value


def require_nonempty(recipients: Sequence[Recipient]) -> None:
    """Refuse a job without recipients."""
    if not recipients:
        raise InvalidInput("recipients", "at least one recipient is required")


def option_text(options: Mapping[str, Any], name: str) -> str | None:
    """An option normalised to the string the form carries (ints become digits); None when absent.

    Booleans and containers are refused: `True` would be sent as "True", which no provider means.
    """
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInput(f"options.{name}", f"must be a string or an integer, got {type(value).__name__}")
    return str(value)


def require_flag(options: Mapping[str, Any], name: str) -> None:
    """Refuse a 0/1 flag option that is neither "0" nor "1" (ints 0 and 1 are accepted too)."""
    value = option_text(options, name)
    if value is not None and value not in ("0", "1"):
        raise InvalidInput(f"options.{name}", f'must be "0" or "1", got {shown(options[name])}')


def validate_unique_mobiles(recipients: Sequence[Recipient]) -> None:
    """Refuse a mobile listed twice: the provider's reports tell recipients apart by mobile alone."""
    seen: set[str] = set()
    for i, recipient in enumerate(recipients):
        if recipient.mobile in seen:
            raise InvalidInput(f"recipients[{i}].mobile", f"{recipient.mobile} is listed twice in this job: the "
                                                          "provider's reports tell recipients apart by mobile")
        seen.add(recipient.mobile)


def check_contents(kind: str, content: Any, recipients: Sequence[Recipient], *, max_chars: int | None,
                   per_recipient: bool) -> None:
    """Text contents within `max_chars`; per-recipient content only where the kind takes it."""
    if max_chars is not None and isinstance(content, str) and len(content) > max_chars:
        raise InvalidInput("content", f"at most {max_chars} characters, got {len(content)}")
    for i, recipient in enumerate(recipients):
        if recipient.content is None:
            continue
        if not per_recipient:
            raise InvalidInput(f"recipients[{i}].content",
                               f"'{kind}' sends the same content to everyone: use the job's content")
        require_text(f"recipients[{i}].content", recipient.content, max_chars)


# --- status maps --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StateMap:
    """A provider's report states → our statuses, with an explicit fallback for a state it does not list.

    `failed_prefix`: a family of failure states (Emay's FAIL_*), so a new one is still a failure."""

    states: Mapping[str, MessageStatus]
    fallback: MessageStatus = MessageStatus.UNKNOWN
    failed_prefix: str | None = None

    def __call__(self, state: str) -> MessageStatus:
        """The status of a (trimmed) state."""
        if state in self.states:
            return self.states[state]
        if self.failed_prefix and state.startswith(self.failed_prefix):
            return MessageStatus.FAILED
        return self.fallback


# --- wire values ----------------------------------------------------------------------------------------

BEIJING_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def beijing_send_time(send_at: datetime | None, now: datetime) -> str | None:
    """`send_at` as Beijing "YYYY-MM-DD HH:MM:SS" while it is still ahead of `now`; None for now or the past."""
    if send_at is None or send_at <= now:
        return None
    return send_at.astimezone(BEIJING).strftime(BEIJING_TIME_FORMAT)


def decimal_amount(value: Any, *, name: str) -> Decimal:
    """A figure of an answer as a finite Decimal; a missing, boolean or non-numeric one is TransientError."""
    try:
        if isinstance(value, bool) or value is None:
            raise InvalidOperation
        amount = Decimal(str(value).strip())
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise TransientError("BAD_ANSWER", f"{name} is not a number: {value!r}") from None
    return amount


def beijing_time(text: Any, formats: Sequence[str] = (BEIJING_TIME_FORMAT,)) -> datetime | None:
    """A Beijing wall-clock time as an aware datetime; None when absent or malformed (a report is never lost
    over its time: providers hand each report out once)."""
    value = "" if text is None else str(text).strip()
    return _beijing_time(value, tuple(formats)) if value else None


@lru_cache(maxsize=4096)
def _beijing_time(value: str, formats: tuple[str, ...]) -> datetime | None:
    """`beijing_time` of a stripped value, cached: a page of reports repeats the same few seconds, and
    `strptime` costs about 10 µs a call."""
    for fmt in formats:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=BEIJING)
        except ValueError:
            continue
    return None


# --- international numbers -----------------------------------------------------------------------------

MAINLAND_CALLING_CODE = 86
MAINLAND_RULE = ("is a mainland China number: international SMS does not deliver to +86, "
                 "send it through a domestic SMS account (qyxs_sms)")
# separators people type inside numbers; anything else is left for phonenumbers to refuse
_SEPARATORS = re.compile(r"[\s\-().\u00a0]")
_DIGITS = re.compile(r"[0-9]+")
EMAY_FORM = re.compile(r"00[1-9][0-9]{5,14}")  # 00 + E.164 digits (at most 15)


class NumberRefused(ValueError):
    """Why one number cannot be sent internationally (the caller adds the field name)."""


def region_for(country: str | None) -> str | None:
    """The ISO region for a job's `country` option (`AU`, `au` or `61`); None when not given."""
    if country is None or str(country).strip() == "":
        return None
    text = str(country).strip()
    if _DIGITS.fullmatch(text) and len(text) <= 3:  # calling codes have 1 to 3 digits
        region = phonenumbers.region_code_for_country_code(int(text))
        if region == "ZZ":
            raise NumberRefused(f"{text} is not a country calling code")
        return region
    region = text.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise NumberRefused(f"{shown(text)} is not an ISO 3166 country code such as AU, GB or US")
    return region


@lru_cache(maxsize=65536)
def to_emay(raw: str, region: str | None = None) -> str:
    """`raw` as `00` + country code + national significant number, or NumberRefused saying why."""
    text = _SEPARATORS.sub("", raw or "")
    if not text:
        raise NumberRefused("is empty")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+"):
        if region is None:
            if MAINLAND_MOBILE.fullmatch(text):
                raise NumberRefused(MAINLAND_RULE)
            raise NumberRefused("must start with + or 00 and the country code (e.g. +61…), "
                                "or the job must give options.country")
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise NumberRefused(f"is not a phone number ({exc._msg})") from None
    if number.country_code == MAINLAND_CALLING_CODE:
        raise NumberRefused(MAINLAND_RULE)
    if not phonenumbers.is_valid_number(number):
        raise NumberRefused(f"is not a valid number for +{number.country_code}")
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return "00" + e164[1:]


def normalise_number(raw: str, region: str | None, field: str) -> str:
    """`to_emay` with the refusal as InvalidInput naming `field`."""
    try:
        return to_emay(raw, region)
    except NumberRefused as exc:
        raise InvalidInput(field, f"{shown(raw)} {exc}") from None
