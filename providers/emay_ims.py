"""Emay international SMS (document 004): single, same-content and per-recipient sends; polled reports.

Bodies are UTF-8 JSON with appId, Beijing-time timestamp and sign = md5(appId + secretKey + timestamp),
the rule of Emay voice (``providers.emay_common``).  The batch's shape picks the endpoint: one recipient
→ sendSingleIMS, per-recipient content → sendPersonalityIMS, else sendBatchIMS (both ≤ 300).  A job of
one recipient goes on the `otp` queue.  The document has no balance query and no push.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

from msgrelay.statuses import MessageStatus
from providers.base import (
    Accepted, HttpResponse, KindSpec, Provider, Recipient, Report, Request, SendSpec, paged_query, send_builder,
    send_parser,
)
from providers.emay_common import (
    ErrorFactory, beijing_timestamp, load_json, parse_beijing_time, sign, stripped_keys, trimmed,
)
from providers.errors import (
    AccountError, AmbiguousError, InvalidInput, PermanentError, ProviderError, RateLimited, RecipientRejected,
    TransientError,
)
from providers.intl_numbers import EMAY_FORM, NumberRefused, normalise_number, region_for
from providers.validation import require_nonempty, require_text, shown, validate_custom_ids, validate_options

SINGLE, BATCH, PERSONAL = "/inter/sendSingleIMS", "/inter/sendBatchIMS", "/inter/sendPersonalityIMS"
REPORT_PATH = "/inter/getIMSReport"
MAX_PER_REQUEST = 300  # 2.2.1.2 and 2.3.1.2: "最多 300 个"
MAX_REPORTS_PER_QUERY = 500  # 2.4.1.2: "最多 500 个, 默认 500 个"
CUSTOM_ID_MAX_CHARS = 32  # "最长 32 位"
# The document names ERROR_LONG_CONTENT without a figure; this is our own bound, kept by the simulator too.
CONTENT_MAX_CHARS = 1000

KINDS: Mapping[str, KindSpec] = {"ims": KindSpec(BATCH, MAX_PER_REQUEST, "bulk", frozenset({"country"}))}

#: table 3, with the document's own texts
CODE_MESSAGES: Mapping[str, str] = {
    "SUCCESS": "提交成功", "ERROR_APPID": "AppId 错误", "ERROR_PARAMS": "请求参数错误",
    "ERROR_CLIENT_IP": "不识别的 Ip", "ERROR_MOBILE_EMPTY": "手机号为空", "ERROR_MOBILE_NUMBER": "号码数量过多",
    "ERROR_MOBILE_ERROR": "手机号码错误", "ERROR_CONTENT_EMPTY": "短信内容为空",
    "ERROR_CUSTOM_IMSID": "自定义消息 ID 过长", "ERROR_LONG_CONTENT": "短信内容过长",
    "ERROR_TIMESTAMP": "时间戳错误", "ERROR_SIGN": "签名错误",
}
_credentials: ErrorFactory = partial(AccountError, reason="credentials")
#: answer code → error family (None: success); every code of table 3, plus two Emay-wide codes
CODE_FAMILIES: Mapping[str, ErrorFactory | None] = {
    "SUCCESS": None,
    "ERROR_APPID": _credentials, "ERROR_CLIENT_IP": _credentials, "ERROR_SIGN": _credentials,
    "ERROR_TIMESTAMP": TransientError,  # clock skew: the retry carries a fresh timestamp
    "ERROR_MOBILE_ERROR": RecipientRejected,  # the flow splits the chunk to isolate the bad number
    "ERROR_PARAMS": PermanentError, "ERROR_MOBILE_EMPTY": PermanentError, "ERROR_MOBILE_NUMBER": PermanentError,
    "ERROR_CONTENT_EMPTY": PermanentError, "ERROR_CUSTOM_IMSID": PermanentError,
    "ERROR_LONG_CONTENT": PermanentError,
    # not in table 3, but answered by Emay's other products on the same platform
    "ERROR_OVER_SPEED": RateLimited,
    "ERROR_NEEDMORE_BALANCE": partial(AccountError, reason="balance"),
}
CODE_FALLBACK: ErrorFactory = TransientError  # any other code: not accepted, so a bounded retry is safe

#: table 4 → message status; another FAIL_* is a failure too; anything else → fallback
IMS_STATES: Mapping[str, MessageStatus] = {
    "DELIVRD": MessageStatus.DELIVERED,
    "TIMEOUT": MessageStatus.EXPIRED,  # 运营商状态报告超时: the network never answered
    **{state: MessageStatus.FAILED for state in (
        "FAIL_BALANCE", "FAIL_MOBILE", "FAIL_MOBILE_SUPPORT", "FAIL_MOBILE_REPEAT", "FAIL_BLACK_DICT",
        "FAIL_RESPONSE", "FAIL_UNKNOW")},
}
IMS_STATE_FALLBACK = MessageStatus.UNKNOWN


def ims_status(state: str) -> MessageStatus:
    """The message status of a (trimmed) report state."""
    if state in IMS_STATES:
        return IMS_STATES[state]
    return MessageStatus.FAILED if state.startswith("FAIL_") else IMS_STATE_FALLBACK


def error_for_code(code: str) -> ProviderError | None:
    """The error a code stands for (None for SUCCESS); an unknown code gets the fallback family."""
    factory = CODE_FAMILIES[code] if code in CODE_FAMILIES else CODE_FALLBACK
    if factory is None:
        return None
    return factory(code, CODE_MESSAGES.get(code, "文档未列出的状态码 (code not in document 004)"))


def checked_answer(response: HttpResponse, *, sending: bool) -> dict[str, Any]:
    """The JSON answer whose `code` is SUCCESS, or the code's error family."""
    payload = load_json(response, sending=sending)
    code = payload.get("code")
    if not isinstance(code, str):
        family = AmbiguousError if sending else TransientError
        raise family("NO_CODE", f"answer has no 'code': {response.text[:80]!r}")
    error = error_for_code(code.strip())
    if error is not None:
        raise error
    return payload


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


def validate_send(spec: SendSpec, recipients: Sequence[Recipient]) -> None:
    """Refuse what document 004 would refuse: content, numbers, custom ids ≤ 32."""
    if spec.kind not in KINDS:
        raise InvalidInput("kind", f"emay_ims sends kind ims, got {shown(spec.kind)}")
    validate_options(spec.kind, spec.options or {}, KINDS["ims"].options)
    require_nonempty(recipients)
    if spec.content is not None or all(r.content is None for r in recipients):
        require_text("content", spec.content, CONTENT_MAX_CHARS)
    for i, recipient in enumerate(recipients):
        if recipient.content is not None:
            require_text(f"recipients[{i}].content", recipient.content, CONTENT_MAX_CHARS)
        elif spec.content is None:
            raise InvalidInput(f"recipients[{i}].content", "is required when the job has no content")
        if not isinstance(recipient.mobile, str) or not EMAY_FORM.fullmatch(recipient.mobile):
            raise InvalidInput(f"recipients[{i}].mobile", f"must be 00 + country code + number, got "
                                                          f"{shown(recipient.mobile)}")
    validate_custom_ids(recipients, CUSTOM_ID_MAX_CHARS)


def signed_body(account: Any, now: datetime, **fields: Any) -> dict[str, Any]:
    """appId, timestamp and sign, then `fields`: the JSON body of every request."""
    timestamp = beijing_timestamp(now)
    secret = account.secret_key.get_secret_value()
    return {"appId": account.app_id, "timestamp": timestamp, "sign": sign(account.app_id, secret, timestamp),
            **fields}


def endpoint_for(batch: Sequence[Recipient]) -> str:
    """The batch's shape picks the endpoint: one recipient, per-recipient content, or one content."""
    if len(batch) == 1:
        return SINGLE
    return PERSONAL if any(r.content is not None for r in batch) else BATCH


def build_send_request(account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime) -> Request:
    """The JSON request that sends `batch` (1–300 recipients) to the endpoint its shape picks."""
    if not 0 < len(batch) <= MAX_PER_REQUEST:
        raise ValueError(f"ims sends 1 to {MAX_PER_REQUEST} recipients per request, got {len(batch)}")
    if not all(r.custom_id for r in batch):
        raise ValueError("every recipient needs its custom_id before it is sent")
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
    return Request(path=path, json=body, headers={"Content-Type": "application/json; charset=UTF-8"})


def parse_send_response(response: HttpResponse, batch: Sequence[Recipient] = ()) -> list[Accepted]:
    """One Accepted per item of `data` (an object for sendSingleIMS, a list otherwise)."""
    payload = checked_answer(response, sending=True)
    data = payload.get("data")
    items = [data] if isinstance(data, Mapping) else data if isinstance(data, list) else []
    by_mobile: dict[str, str | None] = {}
    for r in batch:  # a mobile listed twice cannot tell its custom ids apart
        by_mobile[r.mobile] = None if r.mobile in by_mobile else r.custom_id
    accepted = []
    for item in items:
        if isinstance(item, Mapping):
            fields = stripped_keys(item)
            mobile = trimmed(fields.get("mobile")) or ""
            custom_id = trimmed(fields.get("customImsId")) or by_mobile.get(mobile)
            accepted.append(Accepted(mobile, custom_id, trimmed(fields.get("imsId"))))
    return accepted


def build_report_request(account: Any, now: datetime, number: int = MAX_REPORTS_PER_QUERY) -> Request:
    """The request for up to `number` (1–500) reports; each report is handed out once."""
    if not 1 <= number <= MAX_REPORTS_PER_QUERY:
        raise ValueError(f"number must be 1–{MAX_REPORTS_PER_QUERY}, got {number}")
    return Request(path=REPORT_PATH, json=signed_body(account, now, number=number),
                   headers={"Content-Type": "application/json; charset=UTF-8"})


def _time(value: Any) -> datetime | None:
    try:
        return parse_beijing_time(value)
    except ValueError:
        return None  # a malformed time must not lose the report: it is handed out only once


def report_from_item(item: Any) -> Report:
    """One report record as a Report: state, desc, submitTime and receiveTime are kept in `raw`."""
    if not isinstance(item, Mapping):
        return Report(IMS_STATE_FALLBACK, "", None, None, None, None, None, {"unparsed": item})
    fields = stripped_keys(item)
    state = trimmed(fields.get("state")) or ""
    return Report(
        status=ims_status(state), state=state, desc=trimmed(fields.get("desc")),
        provider_msg_id=trimmed(fields.get("imsId")), custom_id=trimmed(fields.get("customImsId")),
        mobile=trimmed(fields.get("mobile")), reported_at=_time(fields.get("receiveTime")), raw=dict(item),
    )


def parse_report_response(response: HttpResponse) -> list[Report]:
    """The reports in one getIMSReport answer, or the code's error family."""
    data = checked_answer(response, sending=False).get("data")
    if data is None:
        return []
    if not isinstance(data, list):
        raise TransientError("BAD_ANSWER", f"'data' is a {type(data).__name__}, not a list")
    return [report_from_item(item) for item in data]


class EmayIms(Provider):
    """Emay international SMS: kind `ims`."""

    name: ClassVar[str] = "emay_ims"
    kinds: ClassVar[Mapping[str, KindSpec]] = KINDS
    max_recipients_per_request: ClassVar[int] = MAX_PER_REQUEST
    content_max_chars: ClassVar[int] = CONTENT_MAX_CHARS
    custom_id_max_chars: ClassVar[int] = CUSTOM_ID_MAX_CHARS
    report_page_size: ClassVar[int] = MAX_REPORTS_PER_QUERY
    has_balance_query: ClassVar[bool] = False

    normalise = staticmethod(normalise_recipients)  # numbers in Emay's `00` + country code form
    validate = staticmethod(validate_send)
    build_send = send_builder(build_send_request)
    parse_send = send_parser(parse_send_response)
    build_report_query = paged_query(build_report_request)
    parse_reports = staticmethod(parse_report_response)

    def queue_for(self, kind: str, recipients: int) -> str:
        """A single message is latency-critical (often a code): `otp`; anything larger: `bulk`."""
        return "otp" if recipients == 1 else "bulk"
