"""Emay voice (document 001, 2.1–2.3): notification, verification-code and marketing calls.

One account polls one report queue (`/voice/getReport`) and one balance (`/voice/getBalance`) for all
three kinds; reports may also be pushed, plain or AES+gzip (decoded in ``providers.emay.common``).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from models.statuses import MessageStatus, Queue
from providers.base import (
    Accepted, Balance, Carries, HttpResponse, KindSpec, Provider, Push, Recipient, Report, Request, SendSpec,
    paged_query, send_builder, send_parser, timeless_query,
)
from providers.common import StateMap, option_text, require_flag, require_text, shown
from providers.emay.common import (
    EmayAccount, ReportKeys, accepted_items, balance_amount, checked_json, report_page, report_request, signed_form,
)
from providers.emay.push import decode_emay_push, require_app_id
from providers.errors import InvalidInput, ProviderError

CONTENT_MAX_CHARS = 200  # content alone (notify, marketing)
TOTAL_CONTENT_MAX_CHARS = 500  # content + interactiveContent + acousticSignContent
MAX_REPORTS_PER_QUERY = 1000
VFCODE = re.compile(r"[0-9]{4}|[0-9]{6}")  # ASCII digits: \d would take full-width ones
_BULK_OPTIONS = frozenset({"isInteractive", "interactiveContent", "acousticSignContent"})

KINDS: Mapping[str, KindSpec] = {
    "notify": KindSpec("/voice/send", 500, Queue.BULK, _BULK_OPTIONS, CONTENT_MAX_CHARS),
    "vfcode": KindSpec("/voice/sendVFCode", 1, Queue.OTP),
    "marketing": KindSpec("/voice/sendCTCode", 500, Queue.BULK, _BULK_OPTIONS, CONTENT_MAX_CHARS),
}

#: report state (table 3.1, trimmed) → message status; another FAIL_* is a failure too (3.1 names its
#: failures so); anything else keeps the message open
VOICE_STATES = StateMap({
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
}, failed_prefix="FAIL_")


def check_job(spec: SendSpec, recipients: Sequence[Recipient]) -> None:
    """The document's rules beyond the declared limits: a 4- or 6-digit code, or a content that stays within
    500 characters with its interactive and acoustic-sign texts."""
    options = spec.options or {}
    if spec.kind == "vfcode":
        code = require_text("content", spec.content)
        if VFCODE.fullmatch(code) is None:
            raise InvalidInput("content", f"a verification code must be exactly 4 or 6 digits, got {shown(code)}")
        return
    content = require_text("content", spec.content)
    require_flag(options, "isInteractive")
    extra = [option_text(options, name) or "" for name in ("interactiveContent", "acousticSignContent")]
    total = len(content) + sum(len(text) for text in extra)
    if total > TOTAL_CONTENT_MAX_CHARS:
        raise InvalidInput("content", "content + interactiveContent + acousticSignContent: at most "
                                      f"{TOTAL_CONTENT_MAX_CHARS} characters, got {total}")


def build_send_request(account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime) -> Request:
    """The form that sends `batch` (within the kind's limit: the base checked it) to the kind's endpoint."""
    kind = KINDS[spec.kind]
    ids = [recipient.custom_id for recipient in batch]
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


REPORT_KEYS = ReportKeys(provider_id="voiceId", custom_id="customVoiceId", desc="message", time="callingTime")


def build_report_request(account: Any, now: datetime, number: int = MAX_REPORTS_PER_QUERY) -> Request:
    """The form that fetches up to `number` (1–1000) reports; Emay hands each report out once."""
    return report_request("/voice/getReport", "form", account, now, number, MAX_REPORTS_PER_QUERY)


def parse_report_payload(payload: Mapping[str, Any]) -> list[Report]:
    """The reports in a decoded answer or push (its `data` list)."""
    return report_page(payload, VOICE_STATES, REPORT_KEYS)


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
    account_type = EmayAccount
    kinds: ClassVar[Mapping[str, KindSpec]] = KINDS
    report_page_size: ClassVar[int] = MAX_REPORTS_PER_QUERY
    report_states: ClassVar[StateMap] = VOICE_STATES
    push_path: ClassVar[str] = "emay"
    #: plain or AES+gzip; InvalidInput for a bad appId or body
    pushes: ClassVar[Mapping[str, Push]] = {"": Push(decode_push_reports, Carries.REPORTS)}

    check_job = staticmethod(check_job)
    build_send_request = send_builder(build_send_request)
    parse_send = send_parser(parse_send_response)
    build_report_query = paged_query(build_report_request)
    parse_reports = staticmethod(parse_report_response)
    build_balance_query = timeless_query(build_balance_request)  # its sign has no timestamp
    parse_balance = staticmethod(parse_balance_response)
