"""Emay international SMS (document 004): single, same-content and per-recipient sends; polled reports.

Bodies are UTF-8 JSON with appId, Beijing-time timestamp and sign = md5(appId + secretKey + timestamp),
the rule of Emay voice (``providers.emay.common``).  The batch's shape picks the endpoint: one recipient
→ sendSingleIMS, per-recipient content → sendPersonalityIMS, else sendBatchIMS (both ≤ 300).  A job of
one recipient goes on the `otp` queue.  The document has no balance query and no push.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from models.statuses import MessageStatus, Queue
from providers.base import (
    Accepted, HttpResponse, KindSpec, Provider, Recipient, Report, Request, SendSpec, paged_query, send_builder,
    send_parser,
)
from providers.common import (
    EMAY_FORM, NumberRefused, StateMap, normalise_number, region_for, require_text, shown,
    validate_options,
)
from providers.emay.common import (
    JSON_HEADERS, CodeTable, EmayAccount, ReportKeys, accepted_items, checked_json, report_page, report_request,
    signed_body,
)

from providers.errors import (
    InvalidInput, PermanentError, RateLimited, RecipientRejected, TransientError, balance_error, credentials_error,
)

SINGLE, BATCH, PERSONAL = "/inter/sendSingleIMS", "/inter/sendBatchIMS", "/inter/sendPersonalityIMS"
REPORT_PATH = "/inter/getIMSReport"
MAX_PER_REQUEST = 300  # 2.2.1.2 and 2.3.1.2: "最多 300 个"
MAX_REPORTS_PER_QUERY = 500  # 2.4.1.2: "最多 500 个, 默认 500 个"
CUSTOM_ID_MAX_CHARS = 32  # "最长 32 位"
# The document names ERROR_LONG_CONTENT without a figure; this is our own bound, kept by the simulator too.
CONTENT_MAX_CHARS = 1000

KINDS: Mapping[str, KindSpec] = {
    "ims": KindSpec(BATCH, MAX_PER_REQUEST, Queue.BULK, frozenset({"country"}), CONTENT_MAX_CHARS,
                    per_recipient_content=True),
}

#: table 3, with the document's own texts
CODE_MESSAGES: Mapping[str, str] = {
    "SUCCESS": "提交成功", "ERROR_APPID": "AppId 错误", "ERROR_PARAMS": "请求参数错误",
    "ERROR_CLIENT_IP": "不识别的 Ip", "ERROR_MOBILE_EMPTY": "手机号为空", "ERROR_MOBILE_NUMBER": "号码数量过多",
    "ERROR_MOBILE_ERROR": "手机号码错误", "ERROR_CONTENT_EMPTY": "短信内容为空",
    "ERROR_CUSTOM_IMSID": "自定义消息 ID 过长", "ERROR_LONG_CONTENT": "短信内容过长",
    "ERROR_TIMESTAMP": "时间戳错误", "ERROR_SIGN": "签名错误",
}
#: answer code → error family (None: success); every code of table 3, plus two Emay-wide codes
CODE_FAMILIES = {
    "SUCCESS": None,
    "ERROR_APPID": credentials_error, "ERROR_CLIENT_IP": credentials_error, "ERROR_SIGN": credentials_error,
    "ERROR_TIMESTAMP": TransientError,  # clock skew: the retry carries a fresh timestamp
    "ERROR_MOBILE_ERROR": RecipientRejected,  # the flow splits the chunk to isolate the bad number
    "ERROR_PARAMS": PermanentError, "ERROR_MOBILE_EMPTY": PermanentError, "ERROR_MOBILE_NUMBER": PermanentError,
    "ERROR_CONTENT_EMPTY": PermanentError, "ERROR_CUSTOM_IMSID": PermanentError,
    "ERROR_LONG_CONTENT": PermanentError,
    # not in table 3, but answered by Emay's other products on the same platform
    "ERROR_OVER_SPEED": RateLimited,
    "ERROR_NEEDMORE_BALANCE": balance_error,
}
#: any other code: not accepted, so a bounded retry is safe
IMS_CODES = CodeTable(CODE_FAMILIES, CODE_MESSAGES, TransientError)

#: table 4 → message status; another FAIL_* is a failure too; anything else keeps the message open
IMS_STATES = StateMap({
    "DELIVRD": MessageStatus.DELIVERED,
    "TIMEOUT": MessageStatus.EXPIRED,  # 运营商状态报告超时: the network never answered
    **{state: MessageStatus.FAILED for state in (
        "FAIL_BALANCE", "FAIL_MOBILE", "FAIL_MOBILE_SUPPORT", "FAIL_MOBILE_REPEAT", "FAIL_BLACK_DICT",
        "FAIL_RESPONSE", "FAIL_UNKNOW")},
}, failed_prefix="FAIL_")


def normalise_recipients(spec: SendSpec, recipients: Sequence[Recipient]) -> list[Recipient]:
    """Every mobile as `00` + country code + national number; InvalidInput naming the first bad one."""
    options = spec.options or {}
    validate_options(spec.kind, options, KINDS["ims"].options)
    try:
        region = region_for(options.get("country"))
    except NumberRefused as exc:
        raise InvalidInput("options.country", str(exc)) from None
    return [Recipient(normalise_number(r.mobile, region, f"recipients[{i}].mobile"), r.custom_id, r.content)
            for i, r in enumerate(recipients)]


def check_job(spec: SendSpec, recipients: Sequence[Recipient]) -> None:
    """What document 004 would refuse beyond the declared limits: a content for everyone, numbers in its form."""
    if spec.content is not None or all(r.content is None for r in recipients):
        require_text("content", spec.content)
    for i, recipient in enumerate(recipients):
        if recipient.content is None and spec.content is None:
            raise InvalidInput(f"recipients[{i}].content", "is required when the job has no content")
        if not isinstance(recipient.mobile, str) or not EMAY_FORM.fullmatch(recipient.mobile):
            raise InvalidInput(f"recipients[{i}].mobile", f"must be 00 + country code + number, got "
                                                          f"{shown(recipient.mobile)}")


def endpoint_for(batch: Sequence[Recipient]) -> str:
    """The batch's shape picks the endpoint: one recipient, per-recipient content, or one content."""
    if len(batch) == 1:
        return SINGLE
    return PERSONAL if any(r.content is not None for r in batch) else BATCH


def build_send_request(account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime) -> Request:
    """The JSON request that sends `batch` (its size checked by the base) to the endpoint its shape picks."""
    path = endpoint_for(batch)
    if path == SINGLE:
        one = batch[0]
        body = signed_body(account, now, mobile=one.mobile, content=one.content or spec.content,
                           customImsId=one.custom_id)
    elif path == PERSONAL:
        # the parameter table writes `customImId`; its example and every answer write customImsId
        body = signed_body(account, now, imses=[
            {"mobile": r.mobile, "customImsId": r.custom_id, "content": r.content or spec.content} for r in batch])
    else:
        body = signed_body(account, now, content=spec.content,
                           imses=[{"mobile": r.mobile, "customImsId": r.custom_id} for r in batch])
    return Request(path=path, json=body, headers=JSON_HEADERS)


def parse_send_response(response: HttpResponse, batch: Sequence[Recipient] = ()) -> list[Accepted]:
    """One Accepted per item of `data` (an object for sendSingleIMS, a list otherwise)."""
    payload = checked_json(response, sending=True, codes=IMS_CODES)
    return accepted_items(payload, "imsId", "customImsId", batch, one_object=True)


REPORT_KEYS = ReportKeys(provider_id="imsId", custom_id="customImsId", desc="desc", time="receiveTime")


def build_report_request(account: Any, now: datetime, number: int = MAX_REPORTS_PER_QUERY) -> Request:
    """The request for up to `number` (1–500) reports; each report is handed out once."""
    return report_request(REPORT_PATH, "json", account, now, number, MAX_REPORTS_PER_QUERY)


def parse_report_response(response: HttpResponse) -> list[Report]:
    """The reports in one getIMSReport answer (state, desc, submitTime, receiveTime kept raw), or the code's
    error family."""
    return report_page(checked_json(response, sending=False, codes=IMS_CODES), IMS_STATES, REPORT_KEYS)


class EmayIms(Provider):
    """Emay international SMS: kind `ims`."""

    name: ClassVar[str] = "emay_ims"
    account_type = EmayAccount
    kinds: ClassVar[Mapping[str, KindSpec]] = KINDS
    custom_id_max_chars: ClassVar[int] = CUSTOM_ID_MAX_CHARS
    mainland_mobiles: ClassVar[bool] = False  # numbers in Emay's `00` + country code form, checked by check_job
    report_page_size: ClassVar[int] = MAX_REPORTS_PER_QUERY
    report_states: ClassVar[StateMap] = IMS_STATES
    has_balance_query: ClassVar[bool] = False

    normalise = staticmethod(normalise_recipients)
    check_job = staticmethod(check_job)
    build_send_request = send_builder(build_send_request)
    parse_send = send_parser(parse_send_response)
    build_report_query = paged_query(build_report_request)
    parse_reports = staticmethod(parse_report_response)

    def queue_for(self, kind: str, recipients: int) -> Queue:
        """A single message is latency-critical (often a code): `otp`; anything larger: `bulk`."""
        return Queue.OTP if recipients == 1 else Queue.BULK
