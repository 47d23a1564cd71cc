"""ihuyi MMS (document 002): batch send and balance; the provider class.

ihuyi ids a request (`task_id`), not a recipient, so a message's provider id is "{task_id}:{phone}", the key
receipts are matched by. A chunk keeps one request_id for life: ihuyi drops a repeat for 2 hours, so
retrying after a timeout cannot double-send. Signing and answer codes live in ``ihuyi_common``, push parsing
in ``ihuyi_push``, template creation and audits in ``ihuyi_templates``.
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar

from providers.base import (
    Accepted, Balance, HttpResponse, KindSpec, Provider, Recipient, Report, Request, SendSpec, send_parser,
)
from providers.errors import AmbiguousError, InvalidInput, TransientError
from providers.ihuyi_common import checked_answer, public_params
from providers.ihuyi_push import parse_receipt_push
from providers.mms_content import (
    DEFAULT_MAX_KB, MMS_OPTIONS, check_size, content_size, frames_of, int_option, validate_send,
)
from providers.wire_values import beijing_send_time, decimal_amount

MAX_PHONES = 10_000
KINDS: Mapping[str, KindSpec] = {
    "mms": KindSpec("/mms/v1/batchSend", MAX_PHONES, "bulk", MMS_OPTIONS),
}
BALANCE_PATH = "/mms/v1/balance"


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


class IhuyiMms(Provider):
    """ihuyi marketing MMS: kind `mms`, receipts and replies pushed, no report query."""

    name: ClassVar[str] = "ihuyi_mms"
    kinds: ClassVar[Mapping[str, KindSpec]] = KINDS
    max_recipients_per_request: ClassVar[int] = MAX_PHONES
    content_max_kb: ClassVar[int] = DEFAULT_MAX_KB
    has_report_query: ClassVar[bool] = False
    idempotent_request_id: ClassVar[bool] = True
    native_schedule: ClassVar[bool] = True

    validate = staticmethod(validate_send)
    parse_send = send_parser(parse_send_response)  # every phone accepted under the task_id
    build_balance_query = staticmethod(build_balance_request)
    parse_balance = staticmethod(parse_balance_response)  # one figure per product

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

    def decode_push(self, account: Any, headers: Mapping[str, str], body: bytes) -> list[Report]:
        """Receipts from a receipt push."""
        return parse_receipt_push(body)
