"""ihuyi MMS (document 002): batch send, balance, template creation and the three pushes.

Every request is JSON carrying the public parameters api_id, timestamp (10-digit Unix seconds), request_id
and signature = md5("api_id=…&api_key=…&request_id=…&timestamp=…") in lowercase hex; api_key is signed,
never sent. ihuyi ids a request (`task_id`), not a recipient, so a message's provider id is
"{task_id}:{phone}", the key receipts are matched by. A chunk keeps one request_id for life: ihuyi drops a
repeat for 2 hours, so retrying after a timeout cannot double-send. The document lists no error code but
"OK": the exact codes below are the simulator's (docs/providers/ihuyi_mms.md); others go by keyword.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, ClassVar

from msgrelay.statuses import MessageStatus
from providers.base import (
    BEIJING, Accepted, Balance, HttpResponse, Inbound, KindSpec, Provider, Recipient, Report, Request, SendSpec,
)
from providers.errors import (
    AccountError, AmbiguousError, InvalidInput, PermanentError, ProviderError, RateLimited, RecipientRejected,
    TransientError,
)
from providers.mms_content import (
    DEFAULT_MAX_KB, MMS_OPTIONS, check_size, content_size, frames_of, int_option, validate_send,
)

MAX_PHONES = 10_000
KINDS: Mapping[str, KindSpec] = {
    "mms": KindSpec("/mms/v1/batchSend", MAX_PHONES, "bulk", MMS_OPTIONS),
}
OK = "OK"
DELIVERED = "DELIVERED"  # 6.2: the receipt code of success; any other code is a failure

_credentials = partial(AccountError, reason="credentials")
_balance = partial(AccountError, reason="balance")
#: answer code → error family (None: no error); the simulator's vocabulary, see the module docstring
CODE_FAMILIES: Mapping[str, Any] = {
    OK: None,
    "ERROR_API_ID": _credentials,
    "ERROR_SIGNATURE": _credentials,
    "ERROR_CLIENT_IP": _credentials,
    "ERROR_PRODUCT_ID": _credentials,  # the account's product is not its own: an operator must fix it
    "ERROR_BALANCE": _balance,
    "ERROR_TIMESTAMP": TransientError,  # clock skew: the retry carries a fresh timestamp
    "ERROR_OVER_SPEED": RateLimited,
    "ERROR_PHONE": RecipientRejected,  # one bad number refuses the request: the flow splits to isolate it
    **{code: PermanentError for code in ("ERROR_PARAMS", "ERROR_PHONE_NUMBER", "ERROR_SIGN_NAME", "ERROR_TITLE",
                                         "ERROR_CONTENT", "ERROR_TEMPLATE", "ERROR_SEND_TIME")},
}
#: for a code not listed: whole words in it → family, first match wins; nothing matches → TransientError,
#: which is safe here because every retry reuses the chunk's request_id
CODE_KEYWORDS: tuple[tuple[str, Any], ...] = (
    ("BALANCE", _balance), ("SIGNATURE", _credentials), ("API_ID", _credentials), ("APIID", _credentials),
    ("AUTH", _credentials), ("IP", _credentials), ("TIMESTAMP", TransientError), ("SPEED", RateLimited),
    ("FREQUENCY", RateLimited), ("LIMIT", RateLimited), ("PHONE", PermanentError), ("MOBILE", PermanentError),
    ("CONTENT", PermanentError), ("TEMPLATE", PermanentError), ("PARAMS", PermanentError),
    ("PARAM", PermanentError),
)


@dataclass(frozen=True)
class TemplateAudit:
    """One template-audit push (8.2): SUCCESS approves, FAIL rejects."""

    template_id: str
    code: str
    message: str | None
    raw: Mapping[str, Any] = field(default_factory=dict)


def sign(api_id: str, api_key: str, request_id: str, timestamp: int | str) -> str:
    """md5 of the public parameters sorted by name as key=value joined by "&", 32 lowercase hex digits."""
    text = f"api_id={api_id}&api_key={api_key}&request_id={request_id}&timestamp={timestamp}"
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def unix_seconds(now: datetime) -> int:
    """`now` as 10-digit Unix seconds (a naive datetime is taken as UTC; the zone does not change it)."""
    return int((now if now.tzinfo else now.replace(tzinfo=timezone.utc)).timestamp())


def public_params(account: Any, now: datetime, request_id: str | None = None) -> dict[str, Any]:
    """api_id, timestamp, request_id (a fresh one when None) and signature; api_key only inside the md5."""
    request_id = request_id or uuid.uuid4().hex
    timestamp = unix_seconds(now)
    signature = sign(account.api_id, account.api_key.get_secret_value(), request_id, timestamp)
    return {"api_id": account.api_id, "timestamp": timestamp, "request_id": request_id, "signature": signature}


def error_for_code(code: str, message: str | None = None) -> ProviderError | None:
    """The error family of an answer code (None for OK); the message carries ihuyi's own words."""
    if code in CODE_FAMILIES:
        factory = CODE_FAMILIES[code]
    else:
        words = "_" + re.sub(r"[^A-Z0-9]+", "_", code.upper()).strip("_") + "_"
        factory = next((f for word, f in CODE_KEYWORDS if f"_{word}_" in words), TransientError)
    return None if factory is None else factory(code, message or "")


def checked_answer(response: HttpResponse, *, sending: bool) -> dict[str, Any]:
    """The JSON object of an answer whose code is OK; otherwise its error family. A send whose answer
    cannot be read is ambiguous (it may have been accepted); a query's is transient."""
    try:
        payload = json.loads(response.text)
    except (ValueError, TypeError):
        payload = None
    if not isinstance(payload, dict):
        if not 200 <= response.status < 300:  # refused in front of ihuyi (proxy 404, 400): nothing accepted
            raise TransientError(f"HTTP_{response.status}", "answer is not an ihuyi JSON object")
        family = AmbiguousError if sending else TransientError
        raise family("BAD_ANSWER", f"HTTP {response.status} answer is not a JSON object: {response.text[:80]!r}")
    code = payload.get("code")
    if not isinstance(code, str) or not code.strip():
        family = AmbiguousError if sending else TransientError
        raise family("NO_CODE", f"answer has no 'code': {response.text[:80]!r}")
    error = error_for_code(code.strip(), payload.get("message"))
    if error is not None:
        raise error
    return payload


def send_time_text(send_at: datetime | None, now: datetime) -> str | None:
    """`send_time` (Beijing "YYYY-MM-DD HH:MM:SS") for a send_at still ahead; None for now or the past."""
    if send_at is None or send_at <= now:
        return None
    return send_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def build_send_request(account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime,
                       request_id: str) -> Request:
    """The batchSend body for `batch` (1 to 10,000 phones), signed with the chunk's own request_id."""
    if not 0 < len(batch) <= MAX_PHONES:
        raise ValueError(f"batchSend takes 1 to {MAX_PHONES} phones, got {len(batch)}")
    options = spec.options or {}
    body: dict[str, Any] = public_params(account, now, request_id)
    body["product_id"] = int_option(options, "product_id") or account.product_id
    body["phone"] = [r.mobile for r in batch]
    for name in ("sign_name", "title"):
        if options.get(name):
            body[name] = options[name]
    template_id = int_option(options, "template_id")
    if template_id is not None:
        body["template_id"] = template_id
    else:
        body["content"] = frames_of(spec.content)
    send_time = send_time_text(spec.send_at, now if now.tzinfo else now.replace(tzinfo=timezone.utc))
    if send_time:
        body["send_time"] = send_time
    return Request(path=KINDS["mms"].endpoint, json=body)


def parse_send_response(response: HttpResponse, batch: Sequence[Recipient]) -> list[Accepted]:
    """Every phone of the batch accepted under the answer's task_id, or the code's error family."""
    payload = checked_answer(response, sending=True)
    task_id = payload.get("task_id")
    if task_id is None or not str(task_id).strip():
        raise AmbiguousError("NO_TASK_ID", "an OK answer without task_id: receipts could not be matched")
    task_id = str(task_id).strip()
    return [Accepted(mobile=r.mobile, custom_id=r.custom_id, provider_msg_id=f"{task_id}:{r.mobile}",
                     task_id=task_id) for r in batch]


def build_balance_request(account: Any, now: datetime) -> Request:
    """The balance query: the public parameters only."""
    return Request(path="/mms/v1/balance", json=public_params(account, now))


def parse_balance_response(response: HttpResponse) -> list[Balance]:
    """One Balance per product; `product` is "{product_id} {product_name}" so listings show the name."""
    data = checked_answer(response, sending=False).get("data")
    if not isinstance(data, list):
        raise TransientError("BAD_ANSWER", f"balance 'data' is not a list: {type(data).__name__}")
    out = []
    for item in data:
        if not isinstance(item, Mapping):
            continue
        value = item.get("balance")
        try:
            if isinstance(value, bool) or value is None:
                raise InvalidOperation
            amount = Decimal(str(value).strip())
            if not amount.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise TransientError("BAD_ANSWER", f"balance is not a number: {value!r}") from None
        label = " ".join(str(item[k]).strip() for k in ("product_id", "product_name") if item.get(k) is not None)
        out.append(Balance(amount=amount, product=label[:64] or None, raw=dict(item)))
    return out


def build_template_request(account: Any, now: datetime, *, title: str, content: Any, sign_name: str,
                           purpose: str | None = None) -> Request:
    """The templateCreate body (5.3): title, frames, sign_name and the optional purpose."""
    body = {**public_params(account, now), "title": title, "content": frames_of(content), "sign_name": sign_name}
    if purpose:
        body["purpose"] = purpose
    return Request(path="/mms/v1/templateCreate", json=body)


def parse_template_response(response: HttpResponse) -> str:
    """The new template's id, or the code's error family."""
    template_id = checked_answer(response, sending=False).get("template_id")
    if template_id is None or isinstance(template_id, bool) or not str(template_id).strip():
        raise TransientError("BAD_ANSWER", "an OK answer without template_id")
    return str(template_id).strip()


# ---- pushes: ihuyi signs none of them; the account's callback token in the URL keeps strangers out ----
def push_items(body: bytes, what: str) -> list[Mapping[str, Any]]:
    """The records of a push: one JSON object, a list of them, or {"data": [...]}; InvalidInput otherwise."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("body", f"a {what} push must be UTF-8 JSON") from None
    if isinstance(payload, Mapping) and isinstance(payload.get("data"), list):
        payload = payload["data"]
    items = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(item, Mapping) for item in items):
        raise InvalidInput("body", f"a {what} push must be a JSON object or a list of objects")
    return items


def _text(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _required(item: Mapping[str, Any], key: str, what: str, index: int) -> str:
    value = _text(item, key)
    if value is None:
        raise InvalidInput(f"body[{index}].{key}", f"a {what} needs {key}")
    return value


def beijing_time(text: str | None) -> datetime | None:
    """"2020-08-26 16:08:14" (Beijing) as an aware datetime; None when absent or malformed (never lose a push)."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING) if text else None
    except ValueError:
        return None


def receipt_status(code: str | None) -> MessageStatus:
    """DELIVERED → delivered; any other code → failed; no code at all → unknown (kept, status unchanged)."""
    if code is None:
        return MessageStatus.UNKNOWN
    return MessageStatus.DELIVERED if code == DELIVERED else MessageStatus.FAILED


def parse_receipt_push(body: bytes) -> list[Report]:
    """Receipts (6.2: task_id, phone, code, message, send_time, report_time), keyed "{task_id}:{phone}"."""
    out = []
    for i, item in enumerate(push_items(body, "receipt")):
        task_id, phone = _required(item, "task_id", "receipt", i), _required(item, "phone", "receipt", i)
        code = _text(item, "code")
        out.append(Report(status=receipt_status(code), state=code or "", desc=_text(item, "message"),
                          provider_msg_id=f"{task_id}:{phone}", custom_id=None, mobile=phone,
                          reported_at=beijing_time(_text(item, "report_time")), raw=dict(item)))
    return out


def parse_mo_push(body: bytes) -> list[Inbound]:
    """Inbound messages (7.2: task_id, phone, content, dest_code, send_time, receive_time)."""
    out = []
    for i, item in enumerate(push_items(body, "reply")):
        phone = _required(item, "phone", "reply", i)
        content = item.get("content")
        if not isinstance(content, str):
            raise InvalidInput(f"body[{i}].content", "a reply needs its content as text")
        out.append(Inbound(mobile=phone, content=content, received_at=beijing_time(_text(item, "receive_time")),
                           dest_code=_text(item, "dest_code"), task_id=_text(item, "task_id"), raw=dict(item)))
    return out


def parse_template_push(body: bytes) -> list[TemplateAudit]:
    """Template audits (8.2: template_id, code SUCCESS|FAIL, message)."""
    return [TemplateAudit(template_id=_required(item, "template_id", "template audit", i),
                          code=_required(item, "code", "template audit", i), message=_text(item, "message"),
                          raw=dict(item)) for i, item in enumerate(push_items(body, "template audit"))]


class IhuyiMms(Provider):
    """ihuyi marketing MMS: kind `mms`, receipts and replies pushed, no report query."""

    name: ClassVar[str] = "ihuyi_mms"
    kinds: ClassVar[Mapping[str, KindSpec]] = KINDS
    max_recipients_per_request: ClassVar[int] = MAX_PHONES
    content_max_kb: ClassVar[int] = DEFAULT_MAX_KB
    has_report_query: ClassVar[bool] = False
    idempotent_request_id: ClassVar[bool] = True
    native_schedule: ClassVar[bool] = True

    def validate(self, spec: SendSpec, recipients: Sequence[Recipient]) -> None:
        """Raise InvalidInput naming the field and rule."""
        validate_send(spec, recipients)

    def precheck(self, account: Any, spec: SendSpec) -> None:
        """The account's size cap, and a template the audit is known to have rejected."""
        if spec.content is not None:
            check_size(content_size(spec.content), getattr(account, "mms_max_kb", None) or DEFAULT_MAX_KB)
        template_id = int_option(spec.options or {}, "template_id")
        if template_id is not None:
            from msgrelay.templates import rejection  # the templates table; imported late to avoid a cycle
            reason = rejection(account.name, str(template_id))
            if reason is not None:
                raise InvalidInput("options.template_id", f"template {template_id} was rejected by ihuyi's "
                                                          f"audit ({reason}): create and send another")

    def build_send(self, account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime, *,
                   request_id: str | None = None) -> Request:
        """The batchSend request; the flow always passes the chunk's request_id."""
        return build_send_request(account, spec, batch, now, request_id or uuid.uuid4().hex)

    def parse_send(self, spec: SendSpec, batch: Sequence[Recipient], response: HttpResponse) -> list[Accepted]:
        """Every phone accepted under the task_id, or the code's error family."""
        return parse_send_response(response, batch)

    def build_balance_query(self, account: Any, now: datetime) -> Request:
        """The balance query."""
        return build_balance_request(account, now)

    def parse_balance(self, response: HttpResponse) -> list[Balance]:
        """One figure per product."""
        return parse_balance_response(response)

    def decode_push(self, account: Any, headers: Mapping[str, str], body: bytes) -> list[Report]:
        """Receipts from a receipt push."""
        return parse_receipt_push(body)
