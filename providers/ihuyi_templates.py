"""ihuyi MMS templates: creating one (templateCreate, 5.3) and reading its audit push (8.2). No I/O."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from providers.base import HttpResponse, Request
from providers.errors import TransientError
from providers.ihuyi_common import checked_answer, public_params
from providers.ihuyi_push import push_items, required_field, text_field
from providers.mms_content import frames_of

TEMPLATE_PATH = "/mms/v1/templateCreate"


@dataclass(frozen=True)
class TemplateAudit:
    """One template-audit push (8.2): SUCCESS approves, FAIL rejects."""

    template_id: str
    code: str
    message: str | None
    raw: Mapping[str, Any] = field(default_factory=dict)


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


def parse_template_push(body: bytes) -> list[TemplateAudit]:
    """Template audits (8.2: template_id, code SUCCESS|FAIL, message)."""
    return [TemplateAudit(template_id=required_field(item, "template_id", "template audit", i),
                          code=required_field(item, "code", "template audit", i),
                          message=text_field(item, "message"), raw=dict(item))
            for i, item in enumerate(push_items(body, "template audit"))]
