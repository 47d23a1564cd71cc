"""Which accounts are paused (their last try was refused for balance, credentials or client IP) and why; a route
sends around them until they are fixed (a job's resume, an account resume, or a balance that comes back)."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from models import AccountPause, is_sqlite, utcnow
from models.statuses import PauseReason


def paused(session: Session, accounts: Iterable[str]) -> dict[str, str]:
    """The paused ones among `accounts`, with their reasons."""
    names = list(accounts)
    if not names:
        return {}
    return dict(session.execute(select(AccountPause.account, AccountPause.reason)
                                .where(AccountPause.account.in_(names))).all())


def pause(session: Session, account: str, reason: str) -> None:
    """Mark an account paused (the first reason stays until it is cleared)."""
    dialect = sqlite if is_sqlite(session.get_bind()) else postgresql
    session.execute(dialect.insert(AccountPause).values(account=account, reason=reason[:255], paused_at=utcnow())
                    .on_conflict_do_nothing(index_elements=["account"]))


def clear(session: Session, accounts: Iterable[str], *, only: PauseReason | None = None) -> list[str]:
    """Lift the pauses of `accounts` (only those for `only`'s reason, when given); returns the accounts lifted."""
    gone = delete(AccountPause).where(AccountPause.account.in_(list(accounts)))
    if only is not None:
        gone = gone.where(AccountPause.reason.startswith(f"{only.value}:"))
    return list(session.scalars(gone.returning(AccountPause.account)))
