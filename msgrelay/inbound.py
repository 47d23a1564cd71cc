"""Inbound messages (MO) from every provider: stored once each, whether polled or pushed, repeats ignored."""
from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from models import InboundMessage, session_scope, utcnow
from models.bulk import clip, storable
from models.db import ping
from msgrelay import metrics
from msgrelay.accounts import Account
from msgrelay.limits import account_lock
from msgrelay.policy import suppressions
from msgrelay.spool import Spool
from msgrelay.settings import Settings
from providers.base import Inbound
from providers.registry import get_provider


def dedup_key(item: Inbound) -> str:
    """The same message delivered twice (a retried push, an overlapping poll) has the same key."""
    when = item.received_at.isoformat() if item.received_at else ""
    text = "\x1f".join((item.mobile, item.content, when, item.task_id or "", item.dest_code or ""))
    return hashlib.sha256(storable(text).encode()).hexdigest()


def _row(account: Account, key: str, item: Inbound) -> InboundMessage:
    """The table row of one inbound message, every value storable and within its column."""
    return InboundMessage(account=account.name, provider=account.provider, mobile=clip(item.mobile, 32),
                          content=storable(item.content), dest_code=clip(item.dest_code, 32),
                          task_id=clip(item.task_id, 64), received_at=item.received_at, stored_at=utcnow(),
                          dedup_key=key, raw=storable(dict(item.raw)))


def store_inbound(account: Account, items: Sequence[Inbound]) -> int:
    """Store the messages not stored before; returns how many were new."""
    keys = {dedup_key(i): i for i in items}
    try:
        with session_scope() as session:
            seen = set(session.scalars(select(InboundMessage.dedup_key).where(
                InboundMessage.account == account.name, InboundMessage.dedup_key.in_(list(keys) or [""]))))
            fresh = [(key, item) for key, item in keys.items() if key not in seen]
            session.add_all([_row(account, key, item) for key, item in fresh])
            _opt_out(session, account, [item for _, item in fresh])
        return len(fresh)
    except IntegrityError:  # a concurrent delivery of the same message won; store the rest one by one
        return _store_one_by_one(account, list(keys.items()))


def _store_one_by_one(account: Account, items: list[tuple[str, Inbound]]) -> int:
    """Store each message in its own transaction, skipping those already stored; returns how many were new."""
    new = 0
    for key, item in items:
        try:
            with session_scope() as session:
                session.add(_row(account, key, item))
                _opt_out(session, account, [item])
            new += 1
        except IntegrityError:
            pass
    return new


def _opt_out(session: Session, account: Account, items: Sequence[Inbound]) -> None:
    """A reply that is one of the account's opt-out words suppresses its mobile for the account, in the
    transaction that stores it (a reply stored is a reply honoured)."""
    provider = get_provider(account.provider)
    suppressions.opt_out(session, account, provider.kinds if provider else (), items)


def poll_inbound(account: Account, settings: Settings) -> int:
    """Fetch the account's inbound messages (providers with a query), under a per-account lock; the answer is
    kept in the spool before it is parsed, and dropped only once stored (the provider hands each out once)."""
    provider = get_provider(account.provider)
    if provider is None or not provider.has_inbound_query:
        return 0
    lock = account_lock(account.name, "poll-inbound")
    if not lock.acquire():
        return 0
    new = 0

    def store(items: Sequence[Inbound]) -> None:
        nonlocal new
        new += store_inbound(account, items)

    try:
        ping()  # the database is down: fetch nothing
        spool = Spool(account.name, "inbound")
        spool.drain(provider.parse_inbound, store)
        spool.keep(metrics.call(account.name, account.base_url, provider.build_inbound_query(account, utcnow()),
                                sending=False, read_timeout_s=settings.http_read_timeout_s))
        spool.drain(provider.parse_inbound, store)
        return new
    finally:
        try:
            lock.release()
        except Exception:  # expired meanwhile; nothing to undo
            pass


def list_inbound(*, account: str | None = None, limit: int = 100, offset: int = 0,
                 accounts: Collection[str] | None = None) -> list[dict]:
    """Newest first (only of `accounts`, when given: what an API key may see)."""
    with session_scope() as session:
        query = select(InboundMessage).order_by(InboundMessage.id.desc()).limit(limit).offset(offset)
        if account:
            query = query.where(InboundMessage.account == account)
        if accounts is not None:
            query = query.where(InboundMessage.account.in_(sorted(accounts)))
        return [{"id": m.id, "account": m.account, "provider": m.provider, "mobile": m.mobile, "content": m.content,
                 "dest_code": m.dest_code, "task_id": m.task_id,
                 "received_at": m.received_at.isoformat() if m.received_at else None,
                 "stored_at": m.stored_at.isoformat()} for m in session.scalars(query)]
