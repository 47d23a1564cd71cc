"""The audit log of operator actions (DESIGN §9 "API keys"): `record` writes a row in the caller's session, so it
commits or rolls back with the action itself; `list_audit` reads them newest first.

Actions: `job.pause|resume|cancel` (target `job:<id>`), `suppression.add|remove` (`suppression:<scope>:<mobile>`),
`delivery.retry` (`delivery:<id>`), `account.resume` (`account:<name>`). `key` is who: an API key's name,
`api-token` (MSGRELAY_API_TOKEN), `local` (no keys, loopback) or `cli`. Never a token, a hash or a credential.
"""
from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from models import AuditEntry

#: who a change made from the command line is recorded as
CLI = "cli"
DETAIL_MAX_CHARS = 255


class Action(StrEnum):
    """What an audit row says was done."""

    JOB_PAUSE = "job.pause"
    JOB_RESUME = "job.resume"
    JOB_CANCEL = "job.cancel"
    SUPPRESSION_ADD = "suppression.add"
    SUPPRESSION_REMOVE = "suppression.remove"
    DELIVERY_RETRY = "delivery.retry"
    ACCOUNT_RESUME = "account.resume"


def record(session: Session, key: str, action: str, target: str, detail: str | None = None) -> None:
    """Add one audit row to `session` (it commits with the action, or not at all)."""
    if detail is not None and len(detail) > DETAIL_MAX_CHARS:
        detail = detail[:DETAIL_MAX_CHARS - 1] + "…"
    session.add(AuditEntry(key=key[:64], action=str(action), target=target[:128], detail=detail))


def as_dict(row: AuditEntry) -> dict[str, Any]:
    """An audit row as the API shows it."""
    return {"id": row.id, "at": row.at.isoformat(), "key": row.key, "action": row.action, "target": row.target,
            "detail": row.detail}


def list_audit(session: Session, *, limit: int = 100, offset: int = 0, action: str | None = None,
               key: str | None = None) -> list[dict[str, Any]]:
    """Audit rows newest first, optionally of one action and one key."""
    query = select(AuditEntry)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if key is not None:
        query = query.where(AuditEntry.key == key)
    return [as_dict(r) for r in session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit).offset(offset))]
