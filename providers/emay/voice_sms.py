"""Emay voice-SMS (document 001, 2.4, formerly 金融营销): a call that triggers an SMS.

The SMS goes out on a key press (`triggerConditions=3`, `keyContent`) or once the call has lasted
`connectTime` seconds (`triggerConditions=4`).  Reports are polled from `/join/getReport`; the document
describes no push for this product.  Scheduled calls (`timingTime`) were dropped in 001: the flow holds a
job's `send_at` itself.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from models.statuses import MessageStatus, Queue
from providers.base import (
    Accepted, Balance, HttpResponse, KindSpec, Provider, Recipient, Report, Request, SendSpec, paged_query,
    send_builder, send_parser, timeless_query,
)
from providers.common import StateMap, option_text, require_flag, require_text, shown
from providers.emay.common import (
    EmayAccount, ReportKeys, accepted_items, balance_amount, checked_json, report_page, report_request, signed_form,
)
from providers.errors import InvalidInput

TOTAL_CONTENT_MAX_CHARS = 500  # voiceContent + interactiveContent + acousticSignContent
MAX_REPORTS_PER_QUERY = 1000
CONNECT_TIME_RANGE_S = (6, 60)
KEY_DIGIT = re.compile(r"[0-9]")
TRIGGER_ON_KEY, TRIGGER_ON_CONNECT_TIME = "3", "4"

KINDS: Mapping[str, KindSpec] = {
    "voice_sms": KindSpec("/join/send", 500, Queue.BULK, frozenset({
        "isInteractive", "interactiveContent", "isAcousticSign", "acousticSignContent", "smsContent",
        "triggerConditions", "keyContent", "connectTime",
    }), TOTAL_CONTENT_MAX_CHARS, refused_options={
        "timingTime": "scheduled calls are not supported by /join/send (ERROR_TIMING 暂不支持定时外呼): set the "
                      "job's send_at instead",
    }),
}

#: report state (table 3.3, trimmed) → message status; anything else keeps the message open
JOIN_STATES = StateMap({
    "4": MessageStatus.DELIVERED,  # 成功
    "3": MessageStatus.EXPIRED,  # 超时
    "2": MessageStatus.FAILED,  # 失败
})


def _validate_trigger(options: Mapping[str, Any]) -> None:
    """triggerConditions 3 needs keyContent (one digit); 4 needs connectTime (6–60 seconds)."""
    trigger = option_text(options, "triggerConditions")
    if trigger not in (TRIGGER_ON_KEY, TRIGGER_ON_CONNECT_TIME):
        got = "nothing" if trigger is None else shown(options["triggerConditions"])
        raise InvalidInput("options.triggerConditions", '"3" (the SMS goes on a key press) or "4" (when the '
                                                         f"call has lasted connectTime seconds) is required, got {got}")
    key = option_text(options, "keyContent")
    if key is None and trigger == TRIGGER_ON_KEY:
        raise InvalidInput("options.keyContent", "is required when triggerConditions is 3: one digit 0–9")
    if key is not None and KEY_DIGIT.fullmatch(key) is None:
        raise InvalidInput("options.keyContent", f"must be a single digit 0–9, got {shown(options['keyContent'])}")
    seconds = option_text(options, "connectTime")
    low, high = CONNECT_TIME_RANGE_S
    if seconds is None and trigger == TRIGGER_ON_CONNECT_TIME:
        raise InvalidInput("options.connectTime", f"is required when triggerConditions is 4: {low}–{high} seconds")
    if seconds is not None and (not re.fullmatch(r"[0-9]{1,3}", seconds) or not low <= int(seconds) <= high):
        raise InvalidInput("options.connectTime",
                           f"must be an integer from {low} to {high} seconds, got {shown(options['connectTime'])}")


def check_job(spec: SendSpec, recipients: Sequence[Recipient]) -> None:
    """The document's rules beyond the declared limits: 0/1 flags, 500 characters for the
    voice with its interactive and acoustic-sign texts, and a trigger with its key or connect time."""
    options = spec.options or {}
    content = require_text("content", spec.content)
    require_flag(options, "isInteractive")
    require_flag(options, "isAcousticSign")
    extra = [option_text(options, name) or "" for name in ("interactiveContent", "acousticSignContent")]
    option_text(options, "smsContent")  # type check only: the document sets no limit
    total = len(content) + sum(len(text) for text in extra)
    if total > TOTAL_CONTENT_MAX_CHARS:
        raise InvalidInput("content", "voiceContent (content) + interactiveContent + acousticSignContent: at "
                                      f"most {TOTAL_CONTENT_MAX_CHARS} characters, got {total}")
    _validate_trigger(options)


def build_send_request(account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime) -> Request:
    """The `/join/send` form for `batch` (the base checked its size); `spec.content` is the voiceContent."""
    kind = KINDS[spec.kind]
    ids = [recipient.custom_id for recipient in batch]
    options = {name: option_text(spec.options or {}, name) for name in sorted(kind.options)}
    if options["connectTime"] is not None:
        options["connectTime"] = str(int(options["connectTime"]))  # "06" → "6"
    form = signed_form(
        account, now, voiceContent=str(spec.content),
        mobiles=",".join(recipient.mobile for recipient in batch), customJoinIds=",".join(ids), **options,
    )
    return Request(path=kind.endpoint, form=form)


def parse_send_response(response: HttpResponse, batch: Sequence[Recipient] = ()) -> list[Accepted]:
    """One Accepted per item of `data` (joinId, customJoinId), or the answer code's error family."""
    payload = checked_json(response, sending=True)
    return accepted_items(payload, "joinId", "customJoinId", batch)


REPORT_KEYS = ReportKeys(provider_id="joinId", custom_id="customJoinId", desc="desc")


def build_report_request(account: Any, now: datetime, number: int = MAX_REPORTS_PER_QUERY) -> Request:
    """The form that fetches up to `number` (1–1000) reports; Emay hands each report out once."""
    return report_request("/join/getReport", "form", account, now, number, MAX_REPORTS_PER_QUERY)


def parse_report_response(response: HttpResponse) -> list[Report]:
    """The reports in one `/join/getReport` page, or the answer code's error family."""
    return report_page(checked_json(response, sending=False), JOIN_STATES, REPORT_KEYS)


def build_balance_request(account: Any) -> Request:
    """The balance form: appId and sign = md5(appId + secretKey), no timestamp."""
    return Request(path="/join/getBalance", form=signed_form(account, None))


def parse_balance_response(response: HttpResponse) -> list[Balance]:
    """The balance as one figure: `{"data": …, "code": "SUCCESS"}`."""
    payload = checked_json(response, sending=False)
    return [balance_amount(payload, "data")]


class EmayVoiceSms(Provider):
    """Emay voice-SMS: a call that sends an SMS on a key press or after a connect time."""

    name: ClassVar[str] = "emay_voice_sms"
    account_type = EmayAccount
    kinds: ClassVar[Mapping[str, KindSpec]] = KINDS
    report_page_size: ClassVar[int] = MAX_REPORTS_PER_QUERY
    report_states: ClassVar[StateMap] = JOIN_STATES

    check_job = staticmethod(check_job)
    build_send_request = send_builder(build_send_request)
    parse_send = send_parser(parse_send_response)
    build_report_query = paged_query(build_report_request)
    parse_reports = staticmethod(parse_report_response)
    build_balance_query = timeless_query(build_balance_request)  # its sign has no timestamp
    parse_balance = staticmethod(parse_balance_response)
