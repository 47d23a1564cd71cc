"""ihuyi MMS pushes: receipts (6.2) and replies (7.2), plus the record helpers the template audit push shares.

ihuyi signs none of its pushes; the account's callback token in the URL keeps strangers out. A push body is
one JSON object, a list of them, or {"data": [...]}. Nothing here does I/O.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from msgrelay.statuses import MessageStatus
from providers.base import BEIJING, Inbound, Report
from providers.errors import InvalidInput

DELIVERED = "DELIVERED"  # 6.2: the receipt code of success; any other code is a failure


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


def text_field(item: Mapping[str, Any], key: str) -> str | None:
    """A record's field as trimmed text; None when absent or blank."""
    value = item.get(key)
    return None if value is None or str(value).strip() == "" else str(value).strip()


def required_field(item: Mapping[str, Any], key: str, what: str, index: int) -> str:
    """A record's field as trimmed text; InvalidInput naming `body[index].key` when absent or blank."""
    value = text_field(item, key)
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
        out.append(Inbound(mobile=phone, content=content,
                           received_at=beijing_time(text_field(item, "receive_time")),
                           dest_code=text_field(item, "dest_code"), task_id=text_field(item, "task_id"),
                           raw=dict(item)))
    return out
