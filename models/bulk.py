"""Bulk writes and the few set-based queries the flow needs: never one INSERT per recipient."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import Session

from models.tables import Message

MESSAGE_COLUMNS = ("job_id", "seq", "mobile", "content", "custom_id", "status", "updated_at")


def insert_messages(session: Session, rows: Iterable[tuple[Any, ...]]) -> int:
    """Insert message rows (tuples in MESSAGE_COLUMNS order): COPY on PostgreSQL, multi-row INSERT elsewhere."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection  # the psycopg connection, inside the session's transaction
        n = 0
        with raw.cursor() as cur:
            with cur.copy(f"COPY message ({', '.join(MESSAGE_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
        return n
    batch: list[dict[str, Any]] = []
    n = 0
    for row in rows:
        batch.append(dict(zip(MESSAGE_COLUMNS, row)))
        if len(batch) >= 5000:
            session.execute(insert(Message), batch)
            n += len(batch)
            batch.clear()
    if batch:
        session.execute(insert(Message), batch)
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
