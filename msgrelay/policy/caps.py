"""Frequency caps: messages per recipient per calendar day or hour, across every job and worker of an account.

A chunk takes its recipients' counts in the transaction that claims it: one statement adds them to the count
row of each (period, mobile), inserting or locking the rows in one fixed order (so two chunks sharing mobiles wait
for each other, never deadlock), and the caps are checked against the counts it returns; the few recipients over
a cap are taken back out by a second statement before anyone else can see the rows. Counting at the
first claim of a chunk, not at submit, makes a count mean "handed to the provider in this period"; a chunk's
retries and the halves of a split one never count again. Nothing reads the message table.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects import sqlite
from sqlmodel import Session

from models import is_sqlite
from models.policy import FrequencyCount
from providers.base import AccountBase

#: add each key's messages to its count row (inserted when new), locking the rows in one fixed order; returns the
#: counts after. Upserts go through the primary key row by row: no join for the planner to misjudge (a table that
#: grew by a million rows since it was analyzed looks tiny, and an UPDATE … FROM would hash all of it per chunk).
#: (binary parameters: psycopg dumps a list of 500 several times faster so than as an array literal)
_ADD_PG = """
INSERT INTO frequency_count AS f (account, period, mobile, n, ends_at)
SELECT %b, v.period, v.mobile, v.n, e.ends_at
FROM unnest(%b::varchar(16)[], %b::varchar(32)[], %b::int[]) AS v(period, mobile, n)
JOIN unnest(%b::varchar(16)[], %b::timestamptz[]) AS e(period, ends_at) ON e.period = v.period
ORDER BY v.period, v.mobile
ON CONFLICT (account, period, mobile) DO UPDATE SET n = {set_n}
RETURNING f.period, f.mobile, f.n
"""
_SQLITE_ROWS = 400
_TABLE = FrequencyCount.__table__  # Core statements, not the ORM's bulk modes


def take(session: Session, account: AccountBase, keys: Sequence[str], now: datetime) -> list[bool]:
    """For each recipient key in order, whether it is within every cap of the account (and then counted).

    Optimistic: one upsert adds every key's messages to its count rows and returns the counts after; a key that
    went over a cap (rare) is set back to what it may have, by a second upsert of those rows only (still locked
    by this transaction, so nobody saw the excess)."""
    caps = account.caps()
    if not caps or not keys:
        return [True] * len(keys)
    tz = account.tz()
    periods = [(cap.limit, *cap.period(now, tz)) for cap in caps]
    wanted = Counter(keys)
    add = _add_pg if not is_sqlite(session.get_bind()) else _add_sqlite
    after = add(session, account.name, periods, list(wanted), list(wanted.values()))
    over = {key for limit, period, _ in periods for key in wanted if after[(period, key)] > limit}
    if not over:  # the usual case: everyone is within every cap
        return [True] * len(keys)
    may = {key: max(0, min(wanted[key], min(limit - (after[(period, key)] - wanted[key])
                                            for limit, period, _ in periods))) for key in over}
    for limit, period, ends in periods:
        add(session, account.name, [(limit, period, ends)], list(over),
            [after[(period, key)] - wanted[key] + may[key] for key in over], absolute=True)
    used: Counter[str] = Counter()
    allowed = []
    for key in keys:
        ok = key not in over or used[key] < may[key]
        used[key] += ok
        allowed.append(ok)
    return allowed


Periods = Sequence[tuple[int, str, datetime]]  # (limit, period key, when it is over)


def _add_pg(session: Session, account: str, periods: Periods, keys: list[str], ns: list[int], *,
            absolute: bool = False) -> dict[tuple[str, str], int]:
    """Add `ns` (or, `absolute`, set them) to each key's count in each period; the counts after."""
    cur = session.connection().connection.driver_connection.cursor()
    cur.execute(_ADD_PG.format(set_n="excluded.n" if absolute else "f.n + excluded.n"), [
        account, [period for _, period, _ in periods for _ in keys], keys * len(periods), ns * len(periods),
        [period for _, period, _ in periods], [ends for _, _, ends in periods]])
    return {(period, mobile): n for period, mobile, n in cur.fetchall()}


def _add_sqlite(session: Session, account: str, periods: Periods, keys: list[str], ns: list[int], *,
                absolute: bool = False) -> dict[tuple[str, str], int]:
    """SQLite has one writer at a time: upsert, then read the counts back."""
    upsert = sqlite.insert(_TABLE)
    upsert = upsert.on_conflict_do_update(index_elements=["account", "period", "mobile"], set_={
        "n": upsert.excluded.n if absolute else _TABLE.c.n + upsert.excluded.n})
    rows = sorted((period, key, n, ends) for _, period, ends in periods for key, n in zip(keys, ns))
    session.execute(upsert, [{"account": account, "period": p, "mobile": m, "n": n, "ends_at": e}
                             for p, m, n, e in rows])
    out: dict[tuple[str, str], int] = {}
    pairs = [(p, m) for p, m, _, _ in rows]
    for start in range(0, len(pairs), _SQLITE_ROWS):
        part = pairs[start:start + _SQLITE_ROWS]
        out.update({(p, m): n for p, m, n in session.execute(
            select(_TABLE.c.period, _TABLE.c.mobile, _TABLE.c.n).where(
                _TABLE.c.account == account, tuple_(_TABLE.c.period, _TABLE.c.mobile).in_(part)))})
    return out


def prune(session: Session, now: datetime) -> int:
    """Drop the counts of periods that are over; returns how many."""
    return session.execute(delete(FrequencyCount).where(FrequencyCount.ends_at < now)).rowcount or 0
