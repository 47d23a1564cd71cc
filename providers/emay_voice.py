"""Emay voice (document 001, 2.1–2.3): notification, verification-code and marketing calls.

One account polls one report queue (`/voice/getReport`) and one balance (`/voice/getBalance`) for all
three kinds; reports may also be pushed, plain or AES+gzip (see ``providers.emay_push``).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from msgrelay.statuses import MessageStatus
from providers.base import (
    Accepted, Balance, HttpResponse, KindSpec, Provider, Recipient, Report, Request, SendSpec, paged_query,
    send_builder, send_parser, timeless_query,
)
from providers.emay_common import (
    accepted_items,
    balance_amount,
    checked_json,
    data_items,
    parse_beijing_time,
    signed_form,
    stripped_keys,
    trimmed,
)
from providers.emay_push import decode_emay_push, require_app_id
from providers.errors import InvalidInput, ProviderError
from providers.validation import (
    option_text,
    require_flag,
    require_nonempty,
    require_text,
    shown,
    validate_custom_ids,
    validate_mainland_mobiles,
    validate_options,
)

CONTENT_MAX_CHARS = 200  # content alone (notify, marketing)
TOTAL_CONTENT_MAX_CHARS = 500  # content + interactiveContent + acousticSignContent
CUSTOM_ID_MAX_CHARS = 64
MAX_REPORTS_PER_QUERY = 1000
VFCODE = re.compile(r"[0-9]{4}|[0-9]{6}")  # ASCII digits: \d would take full-width ones
_BULK_OPTIONS = frozenset({"isInteractive", "interactiveContent", "acousticSignContent"})

KINDS: Mapping[str, KindSpec] = {
    "notify": KindSpec("/voice/send", 500, "bulk", _BULK_OPTIONS),
    "vfcode": KindSpec("/voice/sendVFCode", 1, "otp", frozenset()),
    "marketing": KindSpec("/voice/sendCTCode", 500, "bulk", _BULK_OPTIONS),
}

#: report state (table 3.1, trimmed) → message status; other FAIL_* → failed, anything else → fallback
VOICE_STATES: Mapping[str, MessageStatus] = {
    "SUCCESS": MessageStatus.DELIVERED,
    "TIMEOUT": MessageStatus.EXPIRED,  # 状态报告超时: no final answer from the network in time
    "FAIL_CALL": MessageStatus.FAILED,
    "FAIL_ERROR_VOICE": MessageStatus.FAILED,
    "FAIL_UNKNOWN": MessageStatus.FAILED,  # 未知失败: a failure whose cause is unknown, still a failure
    "FAIL_NEEDMORE_BALANCE": MessageStatus.FAILED,
    "FAIL_MOBILE": MessageStatus.FAILED,
    "FAIL_BLACKDICTIONARY": MessageStatus.FAILED,
    "FAIL_AUDITINGFAIL": MessageStatus.FAILED,
    "FAIL_APPID": MessageStatus.FAILED,
}
VOICE_STATE_FALLBACK = MessageStatus.UNKNOWN


def voice_status(state: str) -> MessageStatus:
    """The message status of a (trimmed) voice report state."""
    if state in VOICE_STATES:
        return VOICE_STATES[state]
    if state.startswith("FAIL_"):
        return MessageStatus.FAILED  # 3.1 names its failures FAIL_*; a new one is still a failure
    return VOICE_STATE_FALLBACK


def validate_send(spec: SendSpec, recipients: Sequence[Recipient]) -> None:
    """Refuse a voice job that the document's rules would refuse, naming the field and the rule."""
    kind = KINDS.get(spec.kind)
    if kind is None:
        raise InvalidInput("kind", f"must be one of {', '.join(KINDS)} for emay_voice, got {shown(spec.kind)}")
    options = spec.options or {}
    validate_options(spec.kind, options, kind.options)
    if spec.kind == "vfcode":
        code = require_text("content", spec.content)
        if VFCODE.fullmatch(code) is None:
            raise InvalidInput("content", f"a verification code must be exactly 4 or 6 digits, got {shown(code)}")
    else:
        content = require_text("content", spec.content, CONTENT_MAX_CHARS)
        require_flag(options, "isInteractive")
        extra = [option_text(options, name) or "" for name in ("interactiveContent", "acousticSignContent")]
        total = len(content) + sum(len(text) for text in extra)
        if total > TOTAL_CONTENT_MAX_CHARS:
            raise InvalidInput("content", "content + interactiveContent + acousticSignContent: at most "
                                          f"{TOTAL_CONTENT_MAX_CHARS} characters, got {total}")
    require_nonempty(recipients)
    for i, recipient in enumerate(recipients):
        if recipient.content is not None:
            raise InvalidInput(f"recipients[{i}].content",
                               f"'{spec.kind}' sends the same content to everyone: use the job's content")
    validate_mainland_mobiles(recipients)
    validate_custom_ids(recipients, CUSTOM_ID_MAX_CHARS)


def _custom_ids(batch: Sequence[Recipient]) -> list[str]:
    """Our custom ids, one per recipient; every message has one by the time it is sent."""
    ids = [recipient.custom_id for recipient in batch]
    if not all(ids):
        raise ValueError("every recipient needs its custom_id before it is sent")
    return ids


def build_send_request(account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime) -> Request:
    """The form that sends `batch` (at most the kind's limit) to the kind's endpoint."""
    kind = KINDS[spec.kind]
    if not 0 < len(batch) <= kind.max_recipients:
        raise ValueError(f"{spec.kind} sends 1 to {kind.max_recipients} recipients per request, got {len(batch)}")
    ids = _custom_ids(batch)
    if spec.kind == "vfcode":
        form = signed_form(account, now, content=str(spec.content), mobile=batch[0].mobile, customVoiceId=ids[0])
    else:
        options = spec.options or {}
        form = signed_form(
            account, now, content=str(spec.content),
            mobiles=",".join(recipient.mobile for recipient in batch), customVoiceIds=",".join(ids),
            **{name: option_text(options, name) for name in sorted(kind.options)},
        )
    return Request(path=kind.endpoint, form=form)


def parse_send_response(response: HttpResponse, batch: Sequence[Recipient] = ()) -> list[Accepted]:
    """One Accepted per item of `data` (voiceId, customVoiceId), or the answer code's error family."""
    payload = checked_json(response, sending=True)
    return accepted_items(payload, "voiceId", "customVoiceId", batch)


def build_report_request(account: Any, now: datetime, number: int = MAX_REPORTS_PER_QUERY) -> Request:
    """The form that fetches up to `number` (1–1000) reports; Emay hands each report out once."""
    if not 1 <= number <= MAX_REPORTS_PER_QUERY:
        raise ValueError(f"number must be 1–{MAX_REPORTS_PER_QUERY}, got {number}")
    return Request(path="/voice/getReport", form=signed_form(account, now, number=str(number)))


def report_from_item(item: Any) -> Report:
    """One voice report record (polled or pushed) as a Report; the record is kept whole in `raw`."""
    if not isinstance(item, Mapping):
        return Report(VOICE_STATE_FALLBACK, "", None, None, None, None, None, {"unparsed": item})
    fields = stripped_keys(item)
    state = trimmed(fields.get("state")) or ""
    try:
        reported_at = parse_beijing_time(fields.get("callingTime"))
    except ValueError:
        reported_at = None  # a malformed time must not lose the report: it is handed out only once
    return Report(
        status=voice_status(state), state=state, desc=trimmed(fields.get("message")),
        provider_msg_id=trimmed(fields.get("voiceId")), custom_id=trimmed(fields.get("customVoiceId")),
        mobile=trimmed(fields.get("mobile")), reported_at=reported_at, raw=dict(item),
    )


def parse_report_payload(payload: Mapping[str, Any]) -> list[Report]:
    """The reports in a decoded answer or push (its `data` list)."""
    return [report_from_item(item) for item in data_items(payload, sending=False)]


def parse_report_response(response: HttpResponse) -> list[Report]:
    """The reports in one `/voice/getReport` page, or the answer code's error family."""
    return parse_report_payload(checked_json(response, sending=False))


def build_balance_request(account: Any) -> Request:
    """The balance form: appId and sign = md5(appId + secretKey), no timestamp."""
    return Request(path="/voice/getBalance", form=signed_form(account, None))


def parse_balance_response(response: HttpResponse) -> list[Balance]:
    """The balance as one figure; its code is in `responseCode` (SUCCESS)."""
    payload = checked_json(response, sending=False, code_key="responseCode")
    return [balance_amount(payload, "balance")]


def decode_push_reports(account: Any, headers: Mapping[str, str], body: bytes) -> list[Report]:
    """Reports from a pushed body after checking its `appId` header against the account."""
    require_app_id(headers, account.app_id)
    payload = decode_emay_push(account.secret_key.get_secret_value(), body)
    try:
        return parse_report_payload(payload)
    except ProviderError as exc:  # a push is outside input: a bad one is refused, not retried
        raise InvalidInput("body", f"not a report list: {exc}") from None


class EmayVoice(Provider):
    """Emay voice calls: notify, vfcode and marketing."""

    name: ClassVar[str] = "emay_voice"
    kinds: ClassVar[Mapping[str, KindSpec]] = KINDS
    max_recipients_per_request: ClassVar[int] = 500
    content_max_chars: ClassVar[int] = CONTENT_MAX_CHARS
    total_content_max_chars: ClassVar[int] = TOTAL_CONTENT_MAX_CHARS
    custom_id_max_chars: ClassVar[int] = CUSTOM_ID_MAX_CHARS
    report_page_size: ClassVar[int] = MAX_REPORTS_PER_QUERY

    validate = staticmethod(validate_send)
    build_send = send_builder(build_send_request)
    parse_send = send_parser(parse_send_response)
    build_report_query = paged_query(build_report_request)
    parse_reports = staticmethod(parse_report_response)
    build_balance_query = timeless_query(build_balance_request)  # its sign has no timestamp
    parse_balance = staticmethod(parse_balance_response)
    decode_push = staticmethod(decode_push_reports)  # plain or AES+gzip; InvalidInput for a bad appId or body
