"""Frequency caps: messages per recipient per calendar day or hour, across every job and worker of an account.

A chunk takes its recipients' counts in the transaction that claims it: one statement inserts or locks the
count row of each (period, mobile) in a fixed order (so two chunks sharing mobiles wait for each other, never
deadlock), the caps are checked in recipient order, and one statement writes the new counts. Counting at the
first claim of a chunk, not at submit, makes a count mean "handed to the provider in this period"; a chunk's
retries and the halves of a split one never count again. Nothing reads the message table.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, select, text, tuple_, update
from sqlmodel import Session

from models import is_sqlite
from models.policy import FrequencyCount
from providers.base import AccountBase

_TAKE_PG = text("""
INSERT INTO frequency_count (account, period, mobile, n, ends_at)
SELECT :account, v.period, v.mobile, 0, v.ends_at
FROM unnest(CAST(:periods AS varchar(16)[]), CAST(:mobiles AS varchar(32)[]), CAST(:ends AS timestamptz[]))
     AS v(period, mobile, ends_at)
ORDER BY v.period, v.mobile
ON CONFLICT (account, period, mobile) DO UPDATE SET n = frequency_count.n
RETURNING period, mobile, n
""")
_WRITE_PG = text("""
UPDATE frequency_count AS f SET n = v.n
FROM unnest(CAST(:periods AS varchar(16)[]), CAST(:mobiles AS varchar(32)[]), CAST(:ns AS int[])) AS v(period, mobile, n)
WHERE f.account = :account AND f.period = v.period AND f.mobile = v.mobile
""")
_SQLITE_ROWS = 400
_TABLE = FrequencyCount.__table__  # Core statements: an ORM bulk UPDATE would want primary keys, not a WHERE


def take(session: Session, account: AccountBase, keys: Sequence[str], now: datetime) -> list[bool]:
    """For each recipient key in order, whether it is within every cap of the account (and then counted)."""
    caps = account.caps()
    if not caps or not keys:
        return [True] * len(keys)
    tz = account.tz()
    periods = [(cap, *cap.period(now, tz)) for cap in caps]
    unique = sorted(set(keys))
    wanted = sorted((period, key, ends) for _, period, ends in periods for key in unique)
    before = (_take_pg if not is_sqlite(session.get_bind()) else _take_sqlite)(session, account.name, wanted)
    counts = dict(before)
    allowed = []
    for key in keys:
        ok = all(counts[(period, key)] < cap.limit for cap, period, _ in periods)
        if ok:
            for _, period, _ in periods:
                counts[(period, key)] += 1
        allowed.append(ok)
    changed = [(period, key, n) for (period, key), n in counts.items() if n != before[(period, key)]]
    if changed:
        _write(session, account.name, changed)
    return allowed


def _take_pg(session: Session, account: str, wanted: list[tuple[str, str, datetime]]) -> dict[tuple[str, str], int]:
    """Insert the missing count rows and lock them all, in order; their counts before this chunk."""
    periods, mobiles, ends = (list(col) for col in zip(*wanted))
    rows = session.execute(_TAKE_PG, {"account": account, "periods": periods, "mobiles": mobiles, "ends": ends})
    return {(period, mobile): n for period, mobile, n in rows}


def _take_sqlite(session: Session, account: str, wanted: list[tuple[str, str, datetime]]) -> dict[tuple[str, str], int]:
    """SQLite has one writer at a time: insert what is missing, then read."""
    session.execute(insert(_TABLE).prefix_with("OR IGNORE"),
                    [{"account": account, "period": p, "mobile": m, "n": 0, "ends_at": e} for p, m, e in wanted])
    out: dict[tuple[str, str], int] = {}
    pairs = [(p, m) for p, m, _ in wanted]
    for start in range(0, len(pairs), _SQLITE_ROWS):
        part = pairs[start:start + _SQLITE_ROWS]
        out.update({(p, m): n for p, m, n in session.execute(
            select(FrequencyCount.period, FrequencyCount.mobile, FrequencyCount.n).where(
                FrequencyCount.account == account, tuple_(FrequencyCount.period, FrequencyCount.mobile).in_(part)))})
    return out


def _write(session: Session, account: str, changed: list[tuple[str, str, int]]) -> None:
    """Write the new counts."""
    if not is_sqlite(session.get_bind()):
        periods, mobiles, ns = (list(col) for col in zip(*changed))
        session.execute(_WRITE_PG, {"account": account, "periods": periods, "mobiles": mobiles, "ns": ns})
        return
    session.execute(update(_TABLE).where(
        _TABLE.c.account == account, _TABLE.c.period == bindparam("p"),
        _TABLE.c.mobile == bindparam("m")).values(n=bindparam("count")),
        [{"p": p, "m": m, "count": n} for p, m, n in changed])


def prune(session: Session, now: datetime) -> int:
    """Drop the counts of periods that are over; returns how many."""
    return session.execute(delete(FrequencyCount).where(FrequencyCount.ends_at < now)).rowcount or 0
