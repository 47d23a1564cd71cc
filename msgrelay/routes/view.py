"""The operator's view of routes (DESIGN §9): each route's accounts in order, with weight, health, last known
balance and rate limit; and the operator's one action on them, resuming a paused account."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import select

from models.statuses import AccountHealth
from models import AccountPause, session_scope
from msgrelay.accounts import Account, routes_of
from msgrelay.balances import latest_balances
from msgrelay import audit
from msgrelay.routes import health
from providers.errors import NotFound


def route_views(accounts: Mapping[str, Account]) -> list[dict]:
    """Every route of the accounts file, in the file's order, with its accounts in the route's order."""
    routes = routes_of(accounts)
    names = list(dict.fromkeys(a for route in routes.values() for a in route.accounts))
    pauses = _pauses(names)
    balances = last_balances(accounts, names)
    return [{"name": route.name, "mode": route.mode,
             "accounts": [_account_view(accounts[name], weight=route.weight(name), pause=pauses.get(name),
                                        balance=balances.get(name)) for name in route.accounts]}
            for route in routes.values()]


def resume_account(accounts: Mapping[str, Account], account: str, *, by: str) -> bool:
    """Lift the account's pause, so its routes send through it again, with its audit row (`by`: who) in the same
    transaction; False when it was not paused (NotFound when no such account is configured)."""
    if account not in accounts:
        raise NotFound("account", f"no account {account!r} is configured")
    with session_scope() as session:
        resumed = bool(health.clear(session, [account]))
        audit.record(session, by, audit.Action.ACCOUNT_RESUME, f"account:{account}",
                     None if resumed else "was not paused")
        return resumed


def _account_view(account: Account, *, weight: int, pause: tuple[str, datetime] | None,
                  balance: dict | None) -> dict:
    """One account of a route, as the operator sees it."""
    reason, since = pause if pause is not None else (None, None)
    return {"name": account.name, "provider": account.provider, "weight": weight,
            "health": AccountHealth.OK if pause is None else AccountHealth.PAUSED, "paused_reason": reason,
            "paused_since": since.isoformat() if since is not None else None,
            "balance": balance, "rate_limit": account.rate_limit}


def _pauses(names: Iterable[str]) -> dict[str, tuple[str, datetime]]:
    """The paused ones among `names`: their reason and since when."""
    names = list(names)
    if not names:
        return {}
    with session_scope() as session:
        rows = session.execute(select(AccountPause.account, AccountPause.reason, AccountPause.paused_at)
                               .where(AccountPause.account.in_(names))).all()
    return {account: (reason, paused_at) for account, reason, paused_at in rows}


def last_balances(accounts: Mapping[str, Account], names: Iterable[str]) -> dict[str, dict]:
    """The newest balance snapshot of each account (of its configured product, for ihuyi): value and taken_at."""
    wanted = set(names)
    found: dict[str, dict] = {}
    for snap in latest_balances():
        name = snap["account"]
        if name not in wanted:
            continue
        product_id = getattr(accounts[name], "product_id", None)
        # ihuyi snapshots are per product, labelled "{product_id} {product_name}": only the configured one counts
        if product_id is not None and (snap["product"] or "").split(" ")[0] != str(product_id):
            continue
        if name not in found or snap["taken_at"] > found[name]["taken_at"]:
            found[name] = {"value": snap["balance"], "taken_at": snap["taken_at"]}
    return found
