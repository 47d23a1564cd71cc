"""Bulk writes and the few set-based queries the flow needs: never one INSERT per recipient."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from models.tables import Message

MESSAGE_COLUMNS = ("job_id", "seq", "mobile", "content", "custom_id", "status", "updated_at")


def insert_messages(session: Session, rows: Iterable[tuple[Any, ...]]) -> int:
    """Insert message rows (tuples in MESSAGE_COLUMNS order): COPY on PostgreSQL, executemany of plain tuples on
    SQLite (the ORM's per-row bookkeeping costs five times the insert itself)."""
    conn = session.connection()
    dialect = conn.dialect
    table = Message.__table__
    # every column value goes through its SQL type's bind processor (e.g. aware UTC datetimes), cached per value
    procs = [table.c[name].type._cached_bind_processor(dialect) for name in MESSAGE_COLUMNS]
    last: list[tuple[Any, Any]] = [(object(), None)] * len(procs)

    def bound(row: tuple[Any, ...]) -> tuple[Any, ...]:
        out = list(row)
        for i, proc in enumerate(procs):
            if proc is not None and out[i] is not None:
                seen, value = last[i]
                if seen is not out[i]:
                    value = proc(out[i])
                    last[i] = (out[i], value)
                out[i] = value
        return tuple(out)

    raw = conn.connection.driver_connection
    n = 0
    if dialect.name == "postgresql":
        with raw.cursor() as cur:
            with cur.copy(f"COPY message ({', '.join(MESSAGE_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
        return n
    sql = f"INSERT INTO message ({', '.join(MESSAGE_COLUMNS)}) VALUES ({', '.join('?' * len(MESSAGE_COLUMNS))})"
    cur = raw.cursor()
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(bound(row))
        if len(batch) >= 10_000:
            cur.executemany(sql, batch)
            n += len(batch)
            batch.clear()
    if batch:
        cur.executemany(sql, batch)
        n += len(batch)
    return n


def update_messages_by_id(session: Session, changes: Sequence[dict[str, Any]]) -> None:
    """Apply per-row changes, each dict holding `id` and the same set of columns (executemany)."""
    if changes:
        session.execute(update(Message), list(changes))  # ORM bulk UPDATE by primary key


def set_messages_status(
    session: Session, *, job_id: int, lo: int, hi: int, from_statuses: Sequence[str], **values: Any
) -> int:
    """Set columns on a chunk's messages still in one of `from_statuses`; returns the rows changed."""
    stmt = (
        update(Message)
        .where(Message.job_id == job_id, Message.seq >= lo, Message.seq < hi, Message.status.in_(list(from_statuses)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount


def now_values(now: datetime, **values: Any) -> dict[str, Any]:
    """`values` with `updated_at` set to `now`."""
    return {**values, "updated_at": now}
