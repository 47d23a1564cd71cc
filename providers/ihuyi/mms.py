"""ihuyi MMS (document 002): batch send, balance, pushed receipts and replies, templates; the provider class.

ihuyi ids a request (`task_id`), not a recipient, so a message's provider id is "{task_id}:{phone}", the key
receipts are matched by. A chunk keeps one request_id for life: ihuyi drops a repeat for 2 hours, so
retrying after a timeout cannot double-send. Signing, answer codes and push records live in
``providers.ihuyi.common``, the frame rules in ``providers.ihuyi.frames``.
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar

from models.statuses import MessageStatus, Queue
from providers.base import (
    Accepted, Balance, Carries, HttpResponse, Inbound, KindSpec, Provider, Push, Recipient, Report, Request,
    SendSpec, TemplateAudit, send_parser,
)
from providers.common import StateMap, beijing_send_time, beijing_time, decimal_amount
from providers.errors import AmbiguousError, InvalidInput, TransientError
from providers.ihuyi.common import (
    DEFAULT_MAX_KB, IhuyiAccount, checked_answer, public_params, push_items, required_field, text_field,
)
from providers.ihuyi.frames import MMS_OPTIONS, check_job, check_size, content_size, frames_of, int_option

MAX_PHONES = 10_000
KINDS: Mapping[str, KindSpec] = {
    "mms": KindSpec("/mms/v1/batchSend", MAX_PHONES, Queue.BULK, MMS_OPTIONS),
}
BALANCE_PATH = "/mms/v1/balance"
TEMPLATE_PATH = "/mms/v1/templateCreate"
DELIVERED = "DELIVERED"  # 6.2: the receipt code of success
#: 6.2: DELIVERED is success and any other receipt code a failure; a receipt without a code stays open
RECEIPT_STATES = StateMap({DELIVERED: MessageStatus.DELIVERED}, fallback=MessageStatus.FAILED)


def build_send_request(account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime,
                       request_id: str) -> Request:
    """The batchSend body for `batch` (its size checked by the base), signed with the chunk's own request_id."""
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
    send_time = beijing_send_time(spec.send_at, now if now.tzinfo else now.replace(tzinfo=timezone.utc))
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
    return Request(path=BALANCE_PATH, json=public_params(account, now))


def parse_balance_response(response: HttpResponse) -> list[Balance]:
    """One Balance per product; `product` is "{product_id} {product_name}" so listings show the name."""
    data = checked_answer(response, sending=False).get("data")
    if not isinstance(data, list):
        raise TransientError("BAD_ANSWER", f"balance 'data' is not a list: {type(data).__name__}")
    out = []
    for item in data:
        if not isinstance(item, Mapping):
            continue
        amount = decimal_amount(item.get("balance"), name="balance")
        label = " ".join(str(item[k]).strip() for k in ("product_id", "product_name") if item.get(k) is not None)
        out.append(Balance(amount=amount, product=label[:64] or None, raw=dict(item)))
    return out


# --- pushes (6.2 receipts, 7.2 replies, 8.2 template audits) ------------------------------------------

def receipt_status(code: str | None) -> MessageStatus:
    """DELIVERED → delivered; any other code → failed; no code at all → unknown (kept, status unchanged)."""
    return MessageStatus.UNKNOWN if code is None else RECEIPT_STATES(code)


def parse_receipt_push(body: bytes) -> list[Report]:
    """Receipts (6.2: task_id, phone, code, message, send_time, report_time), keyed "{task_id}:{phone}"."""
    out = []
    for i, item in enumerate(push_items(body, "receipt")):
        task_id, phone = required_field(item, "task_id", "receipt", i), required_field(item, "phone", "receipt", i)
        code = text_field(item, "code")
        out.append(Report(status=receipt_status(code), state=code or "", desc=text_field(item, "message"),
                          provider_msg_id=f"{task_id}:{phone}", custom_id=None, mobile=phone,
                          reported_at=beijing_time(text_field(item, "report_time")), raw=dict(item)))
    return out


def parse_mo_push(body: bytes) -> list[Inbound]:
    """Inbound messages (7.2: task_id, phone, content, dest_code, send_time, receive_time)."""
    out = []
    for i, item in enumerate(push_items(body, "reply")):
        phone = required_field(item, "phone", "reply", i)
        content = item.get("content")
        if not isinstance(content, str):
            raise InvalidInput(f"body[{i}].content", "a reply needs its content as text")
        out.append(Inbound(mobile=phone, content=content, received_at=beijing_time(text_field(item, "receive_time")),
                           dest_code=text_field(item, "dest_code"), task_id=text_field(item, "task_id"),
                           raw=dict(item)))
    return out


def parse_template_push(body: bytes) -> list[TemplateAudit]:
    """Template audits (8.2: template_id, code SUCCESS|FAIL, message)."""
    return [TemplateAudit(template_id=required_field(item, "template_id", "template audit", i),
                          code=required_field(item, "code", "template audit", i),
                          message=text_field(item, "message"), raw=dict(item))
            for i, item in enumerate(push_items(body, "template audit"))]


# --- templates (5.3) ------------------------------------------------------------------------------------

def build_template_request(account: Any, now: datetime, *, title: str, content: Any, sign_name: str,
                           purpose: str | None = None) -> Request:
    """The templateCreate body (5.3): title, frames, sign_name and the optional purpose."""
    body = {**public_params(account, now), "title": title, "content": frames_of(content), "sign_name": sign_name}
    if purpose:
        body["purpose"] = purpose
    return Request(path=TEMPLATE_PATH, json=body)


def parse_template_response(response: HttpResponse) -> str:
    """The new template's id, or the code's error family."""
    template_id = checked_answer(response, sending=False).get("template_id")
    if template_id is None or isinstance(template_id, bool) or not str(template_id).strip():
        raise TransientError("BAD_ANSWER", "an OK answer without template_id")
    return str(template_id).strip()


def _ignore_headers(parse: Any) -> Any:
    """A push decoder (account, headers, body) from `parse(body)`: ihuyi's pushes carry nothing else."""
    return lambda account, headers, body: parse(body)


class IhuyiMms(Provider):
    """ihuyi marketing MMS: kind `mms`, receipts and replies pushed, no report query."""

    name: ClassVar[str] = "ihuyi_mms"
    account_type = IhuyiAccount
    kinds: ClassVar[Mapping[str, KindSpec]] = KINDS
    unique_mobiles: ClassVar[bool] = True  # receipts name a recipient by task_id + phone only
    report_states: ClassVar[StateMap] = RECEIPT_STATES
    has_report_query: ClassVar[bool] = False
    idempotent_request_id: ClassVar[bool] = True
    ids_name_requests: ClassVar[bool] = True  # task_id
    request_id_window_s: ClassVar[float] = 2 * 3600.0  # DESIGN §5: ihuyi drops a repeated request_id for 2 hours
    native_schedule: ClassVar[bool] = True
    template_option: ClassVar[str] = "template_id"
    push_path: ClassVar[str] = "ihuyi"
    pushes: ClassVar[Mapping[str, Push]] = {
        "receipt": Push(_ignore_headers(parse_receipt_push), Carries.REPORTS),
        "mo": Push(_ignore_headers(parse_mo_push), Carries.INBOUND),
        "template": Push(_ignore_headers(parse_template_push), Carries.TEMPLATE_AUDITS),
    }

    check_job = staticmethod(check_job)
    parse_send = send_parser(parse_send_response)  # every phone accepted under the task_id
    build_balance_query = staticmethod(build_balance_request)
    parse_balance = staticmethod(parse_balance_response)  # one figure per product

    def precheck(self, account: Any, spec: SendSpec) -> None:
        """The account's size cap on the frames."""
        if spec.content is not None:
            check_size(content_size(spec.content), getattr(account, "mms_max_kb", None) or DEFAULT_MAX_KB)

    def build_send_request(self, account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime,
                           request_id: str | None) -> Request:
        """The batchSend request; the flow always passes the chunk's request_id."""
        return build_send_request(account, spec, batch, now, request_id or uuid.uuid4().hex)
