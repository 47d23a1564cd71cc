"""ihuyi MMS templates: created through the provider and stored `pending`; audit pushes approve or reject.

The audit push may arrive before the creation's own row is written (ihuyi answers, then audits; we store
after the answer), so both writers upsert on (account, template_id) and neither overwrites the other's part:
creation owns title and content, the audit owns status and message.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from models import Template, session_scope, utcnow
from models.statuses import TemplateStatus
from msgrelay import metrics
from msgrelay.accounts import Account
from msgrelay.settings import Settings, get_settings
from providers.base import Provider, SendSpec, TemplateAudit
from providers.common import require_text
from providers.errors import InvalidInput
from providers.ihuyi.frames import (
    DEFAULT_MAX_KB, TITLE_MAX_CHARS, check_size, summary, validate_frames, validate_sign_name,
)
from providers.ihuyi.mms import build_template_request, parse_template_response
from providers.registry import provider_of

PENDING, APPROVED, REJECTED = TemplateStatus.PENDING, TemplateStatus.APPROVED, TemplateStatus.REJECTED
STATUSES = tuple(TemplateStatus)
#: audit code (8.2) → template status; any other code leaves the status as it is
AUDIT_STATUS: Mapping[str, TemplateStatus] = {"SUCCESS": APPROVED, "FAIL": REJECTED}
PURPOSE_MAX_CHARS = 255


def ihuyi_account(accounts: Mapping[str, Account], account: str) -> Account:
    """The named account when it is an ihuyi MMS account; InvalidInput naming `account` otherwise."""
    acct = accounts.get(account)
    if acct is None:
        known = ", ".join(sorted(accounts)) or "none configured"
        raise InvalidInput("account", f"unknown account {account!r}; known: {known}")
    if provider_of(acct).template_option is None:
        raise InvalidInput("account", f"templates are an ihuyi_mms feature; {account!r} is {acct.provider}")
    return acct


def create_template(accounts: Mapping[str, Account], account: str, *, title: str, content: Any, sign_name: str,
                    purpose: str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Validate, ask ihuyi to create the template, store it `pending`; ProviderError when ihuyi refuses."""
    acct = ihuyi_account(accounts, account)
    require_text("title", title, TITLE_MAX_CHARS)
    check_size(validate_frames(content), getattr(acct, "mms_max_kb", DEFAULT_MAX_KB))
    validate_sign_name(sign_name, field="sign_name", required=True)
    if purpose is not None:
        require_text("purpose", purpose, PURPOSE_MAX_CHARS)
    settings = settings or get_settings()
    request = build_template_request(acct, utcnow(), title=title, content=content, sign_name=sign_name,
                                     purpose=purpose)
    template_id = parse_template_response(metrics.call(acct.name, acct.base_url, request, sending=True,
                                                    read_timeout_s=settings.http_read_timeout_s))
    _upsert(acct, template_id, {"title": title, "content": summary(content)}, new_status=PENDING)
    return get_template(acct.name, template_id)


def apply_audits(account: Account, audits: Sequence[TemplateAudit]) -> int:
    """Record audit results; a template created outside msgrelay gets a row too. Returns how many changed."""
    changed = 0
    for audit in audits:
        status = AUDIT_STATUS.get(audit.code.strip().upper())
        values: dict[str, Any] = {"message": (audit.message or audit.code)[:255]}
        if status is not None:
            values["status"] = status
        changed += _upsert(account, audit.template_id, values, new_status=status or PENDING)
    return changed


def _upsert(account: Account, template_id: str, values: dict[str, Any], *, new_status: str) -> int:
    """Update the row's `values`, or insert it with `new_status`; 1 when something changed, else 0."""
    for _ in range(2):  # a concurrent insert of the same template wins once; the second pass updates it
        try:
            with session_scope() as session:
                row = session.scalars(select(Template).where(
                    Template.account == account.name, Template.template_id == template_id)).first()
                if row is None:
                    session.add(Template(account=account.name, provider=account.provider, template_id=template_id,
                                         **{"status": new_status, **values}))
                    return 1
                if all(getattr(row, key) == value for key, value in values.items()):
                    return 0  # the same push again: nothing to change
                for key, value in values.items():
                    setattr(row, key, value)
                row.updated_at = utcnow()
                return 1
        except IntegrityError:
            continue
    return 0


def _as_dict(row: Template) -> dict[str, Any]:
    return {"account": row.account, "template_id": row.template_id, "title": row.title, "status": row.status,
            "message": row.message, "content": row.content, "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat()}


def get_template(account: str, template_id: str) -> dict[str, Any]:
    """One template as the API shows it."""
    with session_scope() as session:
        row = session.scalars(select(Template).where(
            Template.account == account, Template.template_id == template_id)).first()
        if row is None:
            raise InvalidInput("template_id", f"no template {template_id} on account {account!r}")
        return _as_dict(row)


def list_templates(*, account: str | None = None, status: str | None = None, limit: int = 100,
                   offset: int = 0, accounts: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Templates, newest first, optionally of one account or status (only of `accounts`, when given)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}, got {status!r}")
    query = select(Template).order_by(Template.id.desc()).limit(limit).offset(offset)
    if account:
        query = query.where(Template.account == account)
    if status:
        query = query.where(Template.status == status)
    if accounts is not None:
        query = query.where(Template.account.in_(sorted(accounts)))
    with session_scope() as session:
        return [_as_dict(row) for row in session.scalars(query)]


def rejection(account: str, template_id: str) -> str | None:
    """The audit's words when the template is known to be rejected; None otherwise (unknown, pending, approved)."""
    with session_scope() as session:
        row = session.execute(select(Template.status, Template.message).where(
            Template.account == account, Template.template_id == template_id)).first()
    if row is None or row.status != REJECTED:
        return None
    return row.message or TemplateStatus.REJECTED


def is_rejected(account: str, template_id: str) -> bool:
    """True when the template's audit rejected it."""
    return rejection(account, template_id) is not None


def precheck_template(account: Account, provider: Provider, spec: SendSpec) -> None:
    """Refuse a job naming a provider-side template that the provider's audit is known to have rejected."""
    if provider.template_option is None:
        return
    template_id = (spec.options or {}).get(provider.template_option)
    if template_id is None or template_id == "":
        return
    reason = rejection(account.name, str(template_id))
    if reason is not None:
        raise InvalidInput(f"options.{provider.template_option}",
                           f"template {template_id} was rejected by the provider's audit ({reason}): "
                           "create and send another")
