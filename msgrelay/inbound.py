"""Inbound messages (MO) from every provider: stored once each, whether polled or pushed, repeats ignored."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from models import InboundMessage, session_scope, utcnow
from msgrelay.accounts import Account
from msgrelay.limits import account_lock
from msgrelay.settings import Settings
from providers.base import Inbound
from providers.http import http_send
from providers.registry import get_provider


def dedup_key(item: Inbound) -> str:
    """The same message delivered twice (a retried push, an overlapping poll) has the same key."""
    when = item.received_at.isoformat() if item.received_at else ""
    text = "\x1f".join((item.mobile, item.content, when, item.task_id or "", item.dest_code or ""))
    return hashlib.sha256(text.encode()).hexdigest()


def store_inbound(account: Account, items: Sequence[Inbound]) -> int:
    """Store the messages not stored before; returns how many were new."""
    new = 0
    with session_scope() as session:
        keys = {dedup_key(i): i for i in items}
        seen = set(session.scalars(select(InboundMessage.dedup_key).where(
            InboundMessage.account == account.name, InboundMessage.dedup_key.in_(list(keys) or [""]))))
        for key, item in keys.items():
            if key in seen:
                continue
            session.add(InboundMessage(
                account=account.name, provider=account.provider, mobile=item.mobile, content=item.content,
                dest_code=item.dest_code, task_id=item.task_id, received_at=item.received_at, stored_at=utcnow(),
                dedup_key=key, raw=dict(item.raw)))
            new += 1
        try:
            session.flush()
        except IntegrityError:  # a concurrent delivery of the same message won; store the rest one by one
            session.rollback()
            return _store_one_by_one(account, list(keys.items()))
    return new


def _store_one_by_one(account: Account, items: list[tuple[str, Inbound]]) -> int:
    new = 0
    for key, item in items:
        try:
            with session_scope() as session:
                session.add(InboundMessage(
                    account=account.name, provider=account.provider, mobile=item.mobile, content=item.content,
                    dest_code=item.dest_code, task_id=item.task_id, received_at=item.received_at,
                    stored_at=utcnow(), dedup_key=key, raw=dict(item.raw)))
            new += 1
        except IntegrityError:
            pass
    return new


def poll_inbound(account: Account, settings: Settings) -> int:
    """Fetch the account's inbound messages (providers with a query), under a per-account lock."""
    provider = get_provider(account.provider)
    if provider is None or not provider.has_inbound_query:
        return 0
    lock = account_lock(account.name, "poll-inbound")
    if not lock.acquire():
        return 0
    try:
        response = http_send(account.base_url, provider.build_inbound_query(account, utcnow()),
                             read_timeout_s=settings.http_read_timeout_s)
        return store_inbound(account, provider.parse_inbound(response))
    finally:
        try:
            lock.release()
        except Exception:  # expired meanwhile; nothing to undo
            pass


def list_inbound(*, account: str | None = None, limit: int = 100, offset: int = 0) -> list[dict]:
    """Newest first."""
    with session_scope() as session:
        query = select(InboundMessage).order_by(InboundMessage.id.desc()).limit(limit).offset(offset)
        if account:
            query = query.where(InboundMessage.account == account)
        return [{"id": m.id, "account": m.account, "provider": m.provider, "mobile": m.mobile, "content": m.content,
                 "dest_code": m.dest_code, "task_id": m.task_id,
                 "received_at": m.received_at.isoformat() if m.received_at else None,
                 "stored_at": m.stored_at.isoformat()} for m in session.scalars(query)]
