"""Balance polling: one snapshot per account (per product for ihuyi), kept as history."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from models import BalanceSnapshot, session_scope, utcnow
from models.statuses import PauseReason
from msgrelay import metrics
from msgrelay.accounts import Account
from msgrelay.routes import health
from msgrelay.settings import Settings
from providers.registry import get_provider


def poll_balance(account: Account, settings: Settings) -> list[BalanceSnapshot]:
    """Ask the provider for the account's balance and store it."""
    provider = get_provider(account.provider)
    if provider is None or not provider.has_balance_query:
        return []
    now = utcnow()
    response = metrics.call(account.name, account.base_url, provider.build_balance_query(account, now), sending=False,
                         read_timeout_s=settings.http_read_timeout_s)
    snaps = [BalanceSnapshot(account=account.name, provider=account.provider, product=b.product, amount=b.amount,
                             raw=dict(b.raw), taken_at=now) for b in provider.parse_balance(response)]
    with session_scope() as session:
        session.add_all(snaps)
        if any(s.amount > 0 for s in snaps):  # a balance came back: routes may send through it again
            health.clear(session, [account.name], only=PauseReason.BALANCE)
    return snaps


def known_balance(account: Account, *, max_age_s: float) -> Decimal | None:
    """The newest balance of the account (its configured product, for ihuyi) if fresh enough, else None."""
    product_id = getattr(account, "product_id", None)
    with session_scope() as session:
        query = (select(BalanceSnapshot).where(BalanceSnapshot.account == account.name,
                                               BalanceSnapshot.taken_at >= utcnow() - timedelta(seconds=max_age_s))
                 .order_by(BalanceSnapshot.id.desc()).limit(20))
        for snap in session.scalars(query):
            # ihuyi snapshots are per product, labelled "{product_id} {product_name}"
            if product_id is None or (snap.product or "").split(" ")[0] == str(product_id):
                return snap.amount
    return None


def latest_balances() -> list[dict]:
    """The newest snapshot of every account and product."""
    with session_scope() as session:
        newest = (select(BalanceSnapshot.account, BalanceSnapshot.product,
                         func.max(BalanceSnapshot.id).label("id"))
                  .group_by(BalanceSnapshot.account, BalanceSnapshot.product).subquery())
        rows = session.scalars(select(BalanceSnapshot).join(newest, newest.c.id == BalanceSnapshot.id)
                               .order_by(BalanceSnapshot.account))
        return [{"account": r.account, "provider": r.provider, "product": r.product, "balance": str(r.amount),
                 "taken_at": r.taken_at.isoformat()} for r in rows]
