"""Bulk writes and the few set-based queries the flow needs: never one INSERT per recipient.

The ORM's bulk INSERT/UPDATE spent five times longer in per-row bookkeeping than the database spent writing,
so these build plain tuples (each value through its column type's bind processor, cached per distinct value)
and hand them to the driver: COPY on PostgreSQL for inserts, `executemany` otherwise.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import JSON, Table, update
from sqlmodel import Session

from models.statuses import MessageStatus
from models.tables import Message

MESSAGE_COLUMNS = ("job_id", "seq", "mobile", "content", "custom_id", "status", "updated_at")
_BATCH = 10_000


def _bound(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[tuple]:
    """Rows with every value converted as SQLAlchemy would bind it (e.g. aware datetimes → UTC)."""
    dialect = session.connection().dialect
    procs = [table.c[name].type._cached_bind_processor(dialect) for name in columns]
    last: list[tuple[Any, Any]] = [(object(), None)] * len(procs)
    for row in rows:
        out = list(row)
        for i, proc in enumerate(procs):
            if proc is not None and out[i] is not None:
                seen, value = last[i]
                if seen is not out[i]:  # same object as the previous row's (e.g. one `now`): reuse
                    value = proc(out[i])
                    last[i] = (out[i], value)
                out[i] = value
        yield tuple(out)


def _executemany(session: Session, sql: str, rows: Iterable[tuple]) -> int:
    """Run `sql` (with ? placeholders) for every row in batches, on the session's connection and transaction."""
    conn = session.connection()
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    cur = conn.connection.driver_connection.cursor()
    n = 0
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH:
            cur.executemany(sql, batch)
            n += len(batch)
            batch.clear()
    if batch:
        cur.executemany(sql, batch)
        n += len(batch)
    return n


def insert_rows(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert plain rows (values in `columns` order): COPY on PostgreSQL, executemany elsewhere."""
    conn = session.connection()
    quote = conn.dialect.identifier_preparer.quote  # e.g. `desc` is a keyword
    names = ", ".join(quote(c) for c in columns)
    if conn.dialect.name == "postgresql":
        # COPY takes JSON as text; everything else psycopg adapts by itself
        json_at = [i for i, name in enumerate(columns) if isinstance(table.c[name].type, JSON)]
        n = 0
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    if json_at:
                        row = list(row)
                        for i in json_at:
                            row[i] = json.dumps(row[i], ensure_ascii=False)
                    copy.write_row(row)
                    n += 1
        return n
    sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({', '.join('?' * len(columns))})"
    return _executemany(session, sql, _bound(session, table, columns, rows))


def insert_messages(session: Session, rows: Iterable[tuple[Any, ...]]) -> int:
    """Insert message rows (tuples in MESSAGE_COLUMNS order)."""
    return insert_rows(session, Message.__table__, MESSAGE_COLUMNS, rows)


def update_by_id(session: Session, model: type, changes: Sequence[dict[str, Any]]) -> None:
    """Apply per-row changes; each dict holds `id` and the same set of columns."""
    if not changes:
        return
    table: Table = model.__table__
    columns = [c for c in changes[0] if c != "id"]
    quote = session.connection().dialect.identifier_preparer.quote  # e.g. `desc` is a keyword
    sql = f"UPDATE {quote(table.name)} SET {', '.join(f'{quote(c)} = ?' for c in columns)} WHERE id = ?"
    names = [*columns, "id"]
    _executemany(session, sql, _bound(session, table, names, ([row[c] for c in names] for row in changes)))


def update_messages_by_id(session: Session, changes: Sequence[dict[str, Any]]) -> None:
    """Apply per-message changes (each dict holds `id` and the same set of columns)."""
    update_by_id(session, Message, changes)


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


def record_send_results(session: Session, results: Sequence[tuple[int, str, str | None]], *, sent_at: Any) -> None:
    """Write what a send answered, per message `(id, status, provider_msg_id)`. The status replaces only
    `queued` or `unknown`: a report applied while the answer was on its way is the truth and stays."""
    if not results:
        return
    table: Table = Message.__table__
    quote = session.connection().dialect.identifier_preparer.quote
    sql = (f"UPDATE {quote(table.name)} SET status = CASE WHEN status IN (?, ?) THEN ? ELSE status END, "
           "provider_msg_id = ?, submitted_at = ?, updated_at = ? WHERE id = ?")
    names = ["status", "status", "status", "provider_msg_id", "submitted_at", "updated_at", "id"]
    open_ = (MessageStatus.QUEUED.value, MessageStatus.UNKNOWN.value)
    rows = ((*open_, status, pid, sent_at, sent_at, mid) for mid, status, pid in results)
    _executemany(session, sql, _bound(session, table, names, rows))


def storable(value: Any) -> Any:
    """`value` with every string made storable in both databases: no NUL characters (PostgreSQL text refuses
    them) and no lone surrogates (UTF-8 cannot encode them; a provider's JSON may carry "\\ud800")."""
    if isinstance(value, str):
        if value.isascii():
            return value.replace("\x00", "")
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(v) for v in value]
    return value


def clip(value: str | None, width: int) -> str | None:
    """A storable string cut to a column's width (an over-long provider id must not fail a whole page)."""
    return None if value is None else storable(value)[:width]
