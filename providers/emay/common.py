"""What Emay's products share: the account, timestamp and signature, signed forms and bodies, answer codes,
report records (pushed bodies are decoded in ``providers.emay.push``).

Answer codes (document 001, tables 3.2 and 3.4) map to the error families of ``providers.errors``
through one dict, ``CODE_FAMILIES``; a code missing from it falls back to ``CODE_FALLBACK``.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field, SecretStr

from providers.base import BEIJING, Accepted, AccountBase, Balance, HttpResponse, Recipient, Report, Request
from providers.common import StateMap, beijing_time, decimal_amount, loads
from providers.errors import (
    ErrorFactory, PermanentError, ProviderError, RateLimited, RecipientRejected, TransientError,
    balance_error, credentials_error, unreadable,
)


class EmayAccount(AccountBase):
    """Emay voice, voice-SMS or international SMS credentials."""

    provider: Literal["emay_voice", "emay_voice_sms", "emay_ims"]
    app_id: str = Field(min_length=1)
    secret_key: SecretStr


SUCCESS = "SUCCESS"
JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json; charset=UTF-8"}

#: the document's own text for every answer code (3.2 voice, 3.4 voice-SMS), carried in error messages
CODE_MESSAGES: Mapping[str, str] = {
    "SUCCESS": "提交成功",
    "ERROR_APPID": "AppId 不存在",
    "ERROR_PARAMS": "请求参数错误",
    "ERROR_CLIENT_IP": "不识别的 Ip",
    "ERROR_TIMESTAMP": "时间戳错误",
    "ERROR_SIGN": "签名错误",
    "ERROR_MOBILE_EMPTY": "手机号为空",
    "ERROR_MOBILE_NUMBER": "号码数量过多",
    "ERROR_MOBILE_ERROR": "手机号码错误",
    "ERROR_CONTENT_EMPTY": "语音内容为空",
    "ERROR_LONG_CONTENT": "语音内容过长",
    "ERROR_VERIFICATION_CODE_CONTENT": "短信语音验证码内容错误",
    "ERROR_CUSTOM_VOICE_ID": "自定义语音 ID 错误",
    "ERROR_NEEDMORE_BALANCE": "余额不足",
    "ERROR_CUSTOM_VOICE_ID_NUMBER": "自定义语音 ID 数量错误",
    "ERROR_OVER_SPEED": "请求超速",
    "ERROR_MESSAGE_TYPE": "服务号类型不匹配",
    "ERROR_TRIGGERCONDITIONS": "触发条件错误",
    "ERROR_TIMINGTIME": "发送短信定时时间格式错误",
    "ERROR_KEYCONTENT": "按键内容必须为数字",
    "ERROR_CONNECTTIME": "连通时间在 6-60 秒内",
    "ERROR_ISACOUSTICSIGN": "留言标识错误",
    "ERROR_ISINTERACTIVE": "互动标识错误",
    "ERROR_CUSTOM_JOIN_ID": "自定义 ID 错误",
    "ERROR_NEEDMORE_BLANCE": "余额不足",  # sic: the voice-SMS table spells it BLANCE
    "ERROR_CUSTOM_JOIN_ID_NUMBER": "自定义 ID 数量错误",
    "ERROR_TIMING": "暂不支持定时外呼",
    "ERROR_TRIGGER": "无效值",
}

#: answer code → error family; SUCCESS → None (no error)
CODE_FAMILIES: Mapping[str, ErrorFactory | None] = {
    "SUCCESS": None,
    # the account cannot send until someone acts: pause the job
    "ERROR_APPID": credentials_error,
    "ERROR_CLIENT_IP": credentials_error,
    "ERROR_SIGN": credentials_error,
    "ERROR_MESSAGE_TYPE": credentials_error,  # the appId is not a service of this type (voice vs voice-SMS)
    "ERROR_NEEDMORE_BALANCE": balance_error,
    "ERROR_NEEDMORE_BLANCE": balance_error,
    # not accepted, and a later attempt can succeed
    "ERROR_TIMESTAMP": TransientError,  # clock skew: the retry carries a fresh timestamp
    "ERROR_OVER_SPEED": RateLimited,
    # a bad number in the chunk: the flow splits the chunk to isolate it
    "ERROR_MOBILE_ERROR": RecipientRejected,
    # the request itself is wrong: resending it cannot help
    **{
        code: PermanentError
        for code in (
            "ERROR_PARAMS", "ERROR_MOBILE_EMPTY", "ERROR_MOBILE_NUMBER", "ERROR_CONTENT_EMPTY",
            "ERROR_LONG_CONTENT", "ERROR_VERIFICATION_CODE_CONTENT", "ERROR_CUSTOM_VOICE_ID",
            "ERROR_CUSTOM_VOICE_ID_NUMBER", "ERROR_TRIGGERCONDITIONS", "ERROR_TIMINGTIME", "ERROR_KEYCONTENT",
            "ERROR_CONNECTTIME", "ERROR_ISACOUSTICSIGN", "ERROR_ISINTERACTIVE", "ERROR_CUSTOM_JOIN_ID",
            "ERROR_CUSTOM_JOIN_ID_NUMBER", "ERROR_TIMING", "ERROR_TRIGGER",
        )
    },
}

#: an undocumented code: any non-SUCCESS code means "not accepted", so bounded retries are safe
CODE_FALLBACK: ErrorFactory = TransientError


def beijing_timestamp(now: datetime) -> str:
    """`now` as Beijing time yyyyMMddHHmmss, whatever its zone (a naive datetime is taken as UTC)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def sign(app_id: str, secret_key: str, timestamp: str = "") -> str:
    """md5(appId + secretKey + timestamp) as 32 lowercase hex digits (balance queries: no timestamp)."""
    return hashlib.md5(f"{app_id}{secret_key}{timestamp}".encode("utf-8")).hexdigest()


def signed_form(account: Any, now: datetime | None, **fields: str | None) -> dict[str, str]:
    """The form with appId, timestamp and sign first, then `fields` whose value is not None.

    `now=None` gives the balance form: no timestamp, sign = md5(appId + secretKey)."""
    secret = account.secret_key.get_secret_value()
    form: dict[str, str] = {"appId": account.app_id}
    if now is None:
        form["sign"] = sign(account.app_id, secret)
    else:
        timestamp = beijing_timestamp(now)
        form["timestamp"] = timestamp
        form["sign"] = sign(account.app_id, secret, timestamp)
    form.update({name: value for name, value in fields.items() if value is not None})
    return form


def signed_body(account: Any, now: datetime, **fields: Any) -> dict[str, Any]:
    """appId, timestamp and sign, then `fields`: the JSON body of every request (international SMS)."""
    timestamp = beijing_timestamp(now)
    secret = account.secret_key.get_secret_value()
    return {"appId": account.app_id, "timestamp": timestamp, "sign": sign(account.app_id, secret, timestamp),
            **fields}


@dataclass(frozen=True)
class CodeTable:
    """One product's answer codes: code → error family (None: success), the document's text for each, and
    the family of a code the document does not list."""

    families: Mapping[str, ErrorFactory | None]
    messages: Mapping[str, str]
    fallback: ErrorFactory = CODE_FALLBACK

    def error(self, code: str, message: str | None = None) -> ProviderError | None:
        """The error a code stands for (None for success), its message the document's text for it."""
        factory = self.families[code] if code in self.families else self.fallback
        if factory is None:
            return None
        text = self.messages.get(code, "文档未列出的状态码 (code not in the provider's tables)")
        return factory(code, f"{text}: {message}" if message else text)


#: voice and voice-SMS (document 001)
VOICE_CODES = CodeTable(CODE_FAMILIES, CODE_MESSAGES)


def load_json(response: HttpResponse, *, sending: bool) -> dict[str, Any]:
    """The JSON object of an answer; anything else is AmbiguousError on a send (the provider may have
    accepted it) and TransientError on a query."""
    try:
        payload = loads(response.text)
    except (ValueError, TypeError):
        payload = None
    if isinstance(payload, dict):
        return payload
    if not 200 <= response.status < 300:
        # A refusal in front of the provider (404 from a proxy, 400 …): nothing was accepted.
        raise TransientError(f"HTTP_{response.status}", "answer is not an Emay JSON object")
    raise unreadable("BAD_ANSWER", f"HTTP {response.status} answer is not a JSON object: {response.text[:80]!r}",
                     sending=sending)


def checked_json(response: HttpResponse, *, sending: bool, code_key: str = "code",
                 codes: CodeTable = VOICE_CODES) -> dict[str, Any]:
    """The JSON object of an answer whose code is SUCCESS; otherwise the code's error family."""
    payload = load_json(response, sending=sending)
    code = payload.get(code_key)
    if code is None and code_key != "code":
        code = payload.get("code")  # some Emay deployments answer `code` where the document says otherwise
    if not isinstance(code, str):
        raise unreadable("NO_CODE", f"answer has no '{code_key}': {response.text[:80]!r}", sending=sending)
    error = codes.error(code.strip())
    if error is not None:
        raise error
    return payload


def stripped_keys(item: Mapping[str, Any]) -> dict[str, Any]:
    """A record with its keys trimmed: one of the document's examples writes `" desc "`."""
    try:
        keys = "".join(item)
        if keys.split() == [keys]:  # no whitespace in any key (the usual record): nothing to trim
            return item if isinstance(item, dict) else dict(item)
    except TypeError:  # a key that is not a string
        pass
    return {str(key).strip(): value for key, value in item.items()}


def trimmed(value: Any) -> str | None:
    """A field as a trimmed string, None when absent; reports pad states with spaces (`" SUCCESS "`)."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def data_items(payload: Mapping[str, Any], *, sending: bool, one_object: bool = False) -> list[Any]:
    """The `data` list of an answer (missing or null: empty; `one_object`: an object is a list of one);
    any other shape is a bad answer."""
    data = payload.get("data")
    if data is None:
        return []
    if one_object and isinstance(data, Mapping):
        return [data]
    if not isinstance(data, list):
        raise unreadable("BAD_ANSWER", f"'data' is a {type(data).__name__}, not a list", sending=sending)
    return data


def accepted_items(payload: Mapping[str, Any], id_key: str, custom_key: str,
                   batch: Sequence[Recipient] = (), *, one_object: bool = False) -> list[Accepted]:
    """One Accepted per item of `data`; an item without our custom id gets it from `batch` by mobile,
    when exactly one recipient of the batch has that mobile."""
    by_mobile: dict[str, str | None] = {}
    for recipient in batch:
        # a mobile seen twice cannot tell its custom ids apart
        by_mobile[recipient.mobile] = None if recipient.mobile in by_mobile else recipient.custom_id
    accepted = []
    for item in data_items(payload, sending=True, one_object=one_object):
        if not isinstance(item, Mapping):
            continue
        item = stripped_keys(item)
        mobile = trimmed(item.get("mobile")) or ""
        custom_id = trimmed(item.get(custom_key)) or by_mobile.get(mobile)
        accepted.append(Accepted(mobile=mobile, custom_id=custom_id, provider_msg_id=trimmed(item.get(id_key))))
    return accepted


@dataclass(frozen=True)
class ReportKeys:
    """Where a product's report record keeps its fields (the state is always `state`)."""

    provider_id: str
    custom_id: str
    desc: str
    time: str | None = None


def report_from_record(item: Any, states: StateMap, keys: ReportKeys) -> Report:
    """One report record (polled or pushed) as a Report; the record is kept whole in `raw`, a malformed one as
    `{"unparsed": …}` with the map's fallback status (a report is handed out once: never lose it)."""
    if type(item) is not dict and not isinstance(item, Mapping):  # `type` first: the ABC check costs more
        return Report(states.fallback, "", None, None, None, None, None, {"unparsed": item})
    fields = stripped_keys(item)  # the older document writes a key as " desc "
    state = trimmed(fields.get("state")) or ""
    return Report(
        status=states(state), state=state, desc=trimmed(fields.get(keys.desc)),
        provider_msg_id=trimmed(fields.get(keys.provider_id)), custom_id=trimmed(fields.get(keys.custom_id)),
        mobile=trimmed(fields.get("mobile")), raw=dict(item),
        reported_at=beijing_time(fields.get(keys.time)) if keys.time else None,
    )


def report_page(payload: Mapping[str, Any], states: StateMap, keys: ReportKeys) -> list[Report]:
    """The reports of a decoded answer or push (its `data` list)."""
    return [report_from_record(item, states, keys) for item in data_items(payload, sending=False)]


def report_request(path: str, body: str, account: Any, now: datetime, number: int, most: int) -> Request:
    """The request for up to `number` (1 to `most`) reports, as a form (`body="form"`) or JSON; Emay hands
    each report out once."""
    if not 1 <= number <= most:
        raise ValueError(f"number must be 1–{most}, got {number}")
    if body == "form":
        return Request(path=path, form=signed_form(account, now, number=str(number)))
    return Request(path=path, json=signed_body(account, now, number=number), headers=JSON_HEADERS)


def balance_amount(payload: Mapping[str, Any], key: str) -> Balance:
    """The balance figure under `key` as a Decimal; a missing or non-numeric figure is TransientError."""
    return Balance(amount=decimal_amount(payload.get(key), name=f"balance '{key}'"), raw=dict(payload))
