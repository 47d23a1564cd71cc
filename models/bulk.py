"""Bulk writes and the few set-based queries the flow needs: never one INSERT per recipient.

The ORM's bulk INSERT/UPDATE spent five times longer in per-row bookkeeping than the database spent writing,
so these build plain tuples (each value through its column type's bind processor, cached per distinct value)
and hand them to the driver: COPY on PostgreSQL for inserts, `executemany` otherwise.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import orjson
from psycopg.pq import TransactionStatus
from sqlalchemy import (
    ARRAY,
    JSON,
    Row,
    Select,
    Table,
    Update,
    bindparam,
    func,
    insert,
    select,
    text,
    true,
    update,
)
from sqlmodel import Session

from models.statuses import ChunkStatus, MessageStatus
from models.tables import Chunk, Job, Message

MESSAGE_COLUMNS = ("job_id", "seq", "mobile", "content", "custom_id", "found_by_mobile", "status", "updated_at")
#: … and the provider_state/desc of a message written final at submit (a suppressed recipient)
MESSAGE_COLUMNS_STATED = (*MESSAGE_COLUMNS, "provider_state", "provider_desc")
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


def _copy_type(session: Session, column: Any) -> str:
    """The type name binary COPY writes a column's values as (JSON goes as its text: same bytes on the wire)."""
    if isinstance(column.type, JSON):
        return "text"
    name = column.type.compile(session.connection().dialect).lower().split("(")[0].strip()
    return {"timestamp with time zone": "timestamptz", "integer": "int4", "bigint": "int8", "boolean": "bool",
            "smallint": "int2", "double precision": "float8"}.get(name, name)


def json_text(value: Any) -> str:
    """A JSON value as text for a JSON column: orjson (ten times faster than json.dumps), or, for what it refuses
    (a lone surrogate, a non-string key) or a NUL it would escape, json.dumps of the value made storable."""
    try:
        text = orjson.dumps(value)
        if b"\\u0000" not in text:
            return text.decode()
    except TypeError:
        pass
    return json.dumps(storable(value), ensure_ascii=False)


def insert_rows(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert plain rows (values in `columns` order): binary COPY on PostgreSQL, executemany elsewhere."""
    conn = session.connection()
    quote = conn.dialect.identifier_preparer.quote  # e.g. `desc` is a keyword
    names = ", ".join(quote(c) for c in columns)
    if conn.dialect.name == "postgresql":
        json_at = [i for i, name in enumerate(columns) if isinstance(table.c[name].type, JSON)]
        n = 0
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([_copy_type(session, table.c[name]) for name in columns])
                for row in rows:
                    if json_at:
                        row = list(row)
                        for i in json_at:
                            row[i] = json_text(row[i])
                    copy.write_row(row)
                    n += 1
        return n
    json_at = [i for i, name in enumerate(columns) if isinstance(table.c[name].type, JSON)]
    if json_at:
        rows = ([storable(v) if i in json_at else v for i, v in enumerate(row)] for row in rows)
    sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({', '.join('?' * len(columns))})"
    return _executemany(session, sql, _bound(session, table, columns, rows))


def insert_messages(session: Session, rows: Iterable[tuple[Any, ...]], columns: Sequence[str] = MESSAGE_COLUMNS) -> int:
    """Insert message rows (tuples in `columns` order: MESSAGE_COLUMNS or MESSAGE_COLUMNS_STATED)."""
    return insert_rows(session, Message.__table__, columns, rows)


def insert_job_at_once(session: Session, job: Job, chunk: dict[str, Any], columns: Sequence[str],
                       rows: Sequence[tuple[Any, ...]]) -> tuple[int, int]:
    """PostgreSQL: a job's row, its one chunk and its messages (`rows` in `columns` order, `job_id` left out) in
    one statement; returns the job's id and the chunk's. A verification call's submit waits on every round trip:
    this is one where the job, the chunk and a COPY took four. The messages go as one array per column, so the
    statement is the same for any recipients and compiled once per process (a VALUES list of the rows themselves
    made SQLAlchemy compile it anew on every call: 4 of the 7 ms the submit cost the API)."""
    given = dict(zip(columns, zip(*rows)))
    return session.execute(_job_at_once(tuple(columns), tuple(chunk)), {
        **{f"job_{c.name}": getattr(job, c.name) for c in Job.__table__.columns if c.name != "id"},
        **{f"chunk_{name}": value for name, value in chunk.items()},
        **{f"message_{name}": list(given[name]) for name in columns}}).one()


@lru_cache(maxsize=8)
def _job_at_once(columns: tuple[str, ...], chunk: tuple[str, ...]) -> Select:
    """The statement of `insert_job_at_once` for these message and chunk columns, its values all bound."""
    jobs, chunks, messages = Job.__table__, Chunk.__table__, Message.__table__
    made = (insert(jobs).values({c.name: bindparam(f"job_{c.name}", type_=c.type) for c in jobs.columns
                                 if c.name != "id"}).returning(jobs.c.id).cte("made"))
    part = (insert(chunks).from_select(["job_id", *chunk], select(made.c.id, *(
        bindparam(f"chunk_{name}", type_=chunks.c[name].type) for name in chunk)))
            .returning(chunks.c.id).cte("part"))
    each = (insert(messages).from_select(["job_id", *columns], select(made.c.id, *(
        func.unnest(bindparam(f"message_{name}", type_=ARRAY(messages.c[name].type))) for name in columns)))
            .cte("each"))
    return select(made.c.id, part.c.id).select_from(made.join(part, true())).add_cte(each)


def _array_type(session: Session, table: Table, column: str) -> str:
    """The PostgreSQL array type of a column (e.g. `VARCHAR(16)[]`), for an `unnest` of bound lists."""
    return _compiled_array_type(session.connection().dialect, table, column)


@lru_cache(maxsize=64)
def _compiled_array_type(dialect: Any, table: Table, column: str) -> str:
    """`_array_type`, compiled once per dialect, table and column."""
    return f"{table.c[column].type.compile(dialect)}[]"


#: above this many rows a by-id lookup or UPDATE may be planned as a hash join over a scan of the whole table: the
#: planner prices each index probe as a disk read, and its row counts lag a table that a job has just grown (at
#: 200,000 messages: 2,000 ids took 37 ms that way and 4 ms by primary-key probes; a 1,000-report page 205 ms).
#: Probes are what is wanted at any table size, so such a statement may not scan a table whole. Not by switching
#: hash joins off: the statement's triggers join its transition tables (old and new rows, no index) and need them
#: (DESIGN-NOTES, "By-id statements probe the key"). A verification call's one-row statements pay nothing.
_PROBE_ABOVE = 100
_JOIN_BY_KEY = "SET LOCAL enable_seqscan = off"
_JOIN_AS_PLANNED = "SET LOCAL enable_seqscan TO DEFAULT"


@contextmanager
def _by_key(cur: Any, rows: int) -> Iterator[None]:
    """PostgreSQL: join `rows` keys to a table by index probes for the statement `cur` runs inside (see
    _PROBE_ABOVE); the settings go through a cursor of their own, so `cur` keeps its result."""
    if rows <= _PROBE_ABOVE:
        yield
        return
    conn = cur.connection
    conn.execute(_JOIN_BY_KEY)
    try:
        yield
    finally:  # after a failed statement the transaction is void: its rollback undoes the setting too
        if conn.info.transaction_status != TransactionStatus.INERROR:
            conn.execute(_JOIN_AS_PLANNED)


def _unnest_update(session: Session, table: Table, set_sql: str, columns: Sequence[str], rows: Sequence[tuple],
                   where: str = "", constants: Sequence[Any] = ()) -> int:
    """PostgreSQL: one `UPDATE … FROM unnest(<one array per column>) AS v(…) WHERE t.id = v.id` for every row
    (one statement, so statement-level triggers run once and the planner joins once); `rows` hold `columns`,
    `constants` fill the `%b` placeholders of `set_sql`, in order."""
    quote = session.connection().dialect.identifier_preparer.quote
    # binary parameters: psycopg dumps a list five times faster than as an array literal (datetimes above all)
    arrays = ", ".join(f"%b::{_array_type(session, table, c)}" for c in columns)
    sql = (f"UPDATE {quote(table.name)} AS t SET {set_sql} FROM unnest({arrays}) AS v({', '.join(quote(c) for c in columns)}) "
           f"WHERE t.id = v.id{where}")
    cur = session.connection().connection.driver_connection.cursor()
    n = 0
    for start in range(0, len(rows), _BATCH):
        part = rows[start:start + _BATCH]
        with _by_key(cur, len(part)):
            cur.execute(sql, [*constants, *(list(col) for col in zip(*part))])
        n += cur.rowcount
    return n


def update_by_id(session: Session, model: type, changes: Sequence[dict[str, Any]]) -> None:
    """Apply per-row changes; each dict holds `id` and the same set of columns (set-based on PostgreSQL)."""
    if not changes:
        return
    table: Table = model.__table__
    columns = [c for c in changes[0] if c != "id"]
    quote = session.connection().dialect.identifier_preparer.quote  # e.g. `desc` is a keyword
    names = [*columns, "id"]
    if session.connection().dialect.name == "postgresql":
        _unnest_update(session, table, ", ".join(f"{quote(c)} = v.{quote(c)}" for c in columns), names,
                       [tuple(row[c] for c in names) for row in changes])
        return
    sql = f"UPDATE {quote(table.name)} SET {', '.join(f'{quote(c)} = ?' for c in columns)} WHERE id = ?"
    _executemany(session, sql, _bound(session, table, names, ([row[c] for c in names] for row in changes)))


#: a message the account's reports may settle, `{m}` its row: its jobs', or a route job's message handed to the
#: account (it names it)
_OURS = "({m}.account = {a} OR ({m}.account IS NULL AND {m}.job_id IN (SELECT id FROM job WHERE account = {a})))"
_SET_REPORTED = ("status = coalesce(v.status, t.status), provider_state = v.provider_state, "
                 "provider_desc = v.provider_desc, reported_at = v.reported_at, updated_at = %b")


#: a report named by (mobile, provider id) finds its message among those found by mobile: the predicate of their
#: partial index, said as the index says it, lets the planner use it (migration 0015)
BY_ANSWER_MATCH = "t.mobile = v.mobile AND t.found_by_mobile AND t.provider_msg_id = v.provider_msg_id"


def reports_statement(session: Session, columns: Sequence[str], match: str, keep: str) -> str:
    """PostgreSQL: `apply_reports`' statement for one kind of key (`columns`: the key's, then what is written;
    `match`: the key's join, `t` the message and `v` the reports)."""
    arrays = ", ".join(f"%b::{_array_type(session, Message.__table__, c)}" for c in columns)
    named = "v.custom_id" if columns[0] == "custom_id" else "v.mobile, v.provider_msg_id"
    return (f"WITH v AS MATERIALIZED (SELECT m.id, m.job_id, m.account, u.* FROM unnest({arrays}) "
            f"AS u({', '.join(columns)}) JOIN message AS m ON {match.replace('t.', 'm.').replace('v.', 'u.')}) "
            f"UPDATE message AS t SET {_SET_REPORTED} FROM v WHERE t.id = v.id AND t.status IN ({keep}) "
            f"AND {_OURS.format(m='v', a='%b')} "
            f"RETURNING t.id, t.job_id, {named}, v.status")


def apply_reports(session: Session, account: str, by_custom: Mapping[str, tuple],
                  by_answer: Mapping[tuple[str, str], tuple], *, now: Any, updatable: Sequence[str]) -> list[tuple]:
    """Write what reports said, `(status or None to keep it, provider_state, provider_desc, reported_at)` per
    custom id or per (mobile, provider id), to the account's messages still in one of `updatable` (a final status
    is never replaced, even by a change committed after the reports were read), each message found and changed by
    the same statement; returns `(id, job_id, key, status)` of each message changed."""
    keep = ", ".join(f"'{s}'" for s in updatable)  # our own status words, never input
    table: Table = Message.__table__
    postgresql = session.connection().dialect.name == "postgresql"
    changed: list[tuple] = []
    for book, names, match in ((by_custom, ("custom_id",), "t.custom_id = v.custom_id"),
                               (by_answer, ("mobile", "provider_msg_id"), BY_ANSWER_MATCH)):
        if not book:
            continue
        columns = (*names, "status", "provider_state", "provider_desc", "reported_at")
        if not postgresql:  # SQLite: a statement a message, the same guards (its calls are local, not round trips)
            sql = (f"UPDATE message AS t SET {_SET_REPORTED.replace('v.', ':').replace('%b', ':updated_at')} WHERE "
                   f"{match.replace('v.', ':')} AND t.status IN ({keep}) AND {_OURS.format(m='t', a=':account')} "
                   "RETURNING id, job_id")  # SQLite's RETURNING names columns unqualified
            cur = session.connection().connection.driver_connection.cursor()
            keys = list(book)
            rows = _bound(session, table, [*columns, "updated_at"],
                          ((*(k if type(k) is tuple else (k,)), *book[k], now) for k in keys))
            for key, row in zip(keys, rows):
                cur.execute(sql, {**dict(zip((*columns, "updated_at"), row)), "account": account})
                changed += [(mid, job_id, key, book[key][0]) for mid, job_id in cur.fetchall()]
            continue
        # PostgreSQL: one statement. Its lookup is planned apart (MATERIALIZED) as find_messages' is: the keys
        # unnested, each message probed by its key's index; then the UPDATE by primary key, filtering `message`
        # by status only (the account's check on `message` itself once made the planner take the table for a
        # row and scan a whole index per batch)
        sql = reports_statement(session, columns, match, keep)
        key_columns = [list(book)] if len(names) == 1 else [list(c) for c in zip(*book)]
        cur = session.connection().connection.driver_connection.cursor()
        with _by_key(cur, len(book)):
            cur.execute(sql, [*key_columns, *(list(c) for c in zip(*book.values())), now, account, account])
            got = cur.fetchall()
        changed += got if len(names) == 1 else [(mid, job_id, (mobile, pid), status)
                                                for mid, job_id, mobile, pid, status in got]
    return changed


_FOUND = "m.id, m.job_id, m.custom_id, m.provider_msg_id, m.status, m.account, m.mobile"
#: PostgreSQL: messages by custom id, and by (mobile, provider id) through the partial index of the messages found
#: by mobile (its predicate said as the index says it, so that the planner may use it). A join with the unnested
#: keys, not `= ANY(…)`: for thousands of ids the planner costs ANY as a scan of the whole table (23 ms at 200,000
#: messages) where the join walks the index (6 ms)
BY_CUSTOM_ID = f"SELECT {_FOUND} FROM unnest(%b::varchar(64)[]) AS v(key) JOIN message AS m ON m.custom_id = v.key"
BY_ANSWER = (f"SELECT {_FOUND} FROM unnest(%b::varchar(32)[], %b::varchar(64)[]) AS v(mobile, key) "
             "JOIN message AS m ON m.mobile = v.mobile AND m.found_by_mobile AND m.provider_msg_id = v.key")


def find_messages(session: Session, custom_ids: Sequence[str], answered: Sequence[tuple[str, str]]) -> list[Any]:
    """Messages (id, job_id, custom_id, provider_msg_id, status, account, mobile) with one of the custom ids, or
    one of the `answered` (mobile, provider id) pairs (`account`: the account a route job's message was handed
    to; None for other jobs). A provider id is found through its mobile's index: `provider_msg_id` has none, so
    the send's answer, which sets it, is a HOT update (see migration 0012). Only a message `found_by_mobile` has
    an entry there (migration 0015): the pairs name request ids, which only such messages were given."""
    found: list[Any] = []
    if session.connection().dialect.name == "postgresql":  # one array each: no per-item bind parameters
        cur = session.connection().connection.driver_connection.cursor()
        if custom_ids:
            with _by_key(cur, len(custom_ids)):
                cur.execute(BY_CUSTOM_ID, [list(custom_ids)])
            found += cur.fetchall()
        if answered:
            with _by_key(cur, len(answered)):
                cur.execute(BY_ANSWER, [[mobile for mobile, _ in answered], [key for _, key in answered]])
            found += cur.fetchall()
        return found
    wanted = (Message.id, Message.job_id, Message.custom_id, Message.provider_msg_id, Message.status, Message.account,
              Message.mobile)
    for start in range(0, len(custom_ids), 900):
        found += session.execute(select(*wanted).where(Message.custom_id.in_(custom_ids[start:start + 900]))).all()
    pairs = set(answered)
    for start in range(0, len(answered), 450):
        part = answered[start:start + 450]
        found += [row for row in session.execute(select(*wanted).where(
            Message.mobile.in_(sorted({mobile for mobile, _ in part})), text("message.found_by_mobile"),
            Message.provider_msg_id.in_(sorted({key for _, key in part})))).all() if (row[6], row[3]) in pairs]
    return found


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


def claim_with_batch(session: Session, *, chunk_id: int, request_id_before: str | None, request_id: str | None,
                     request_id_at: Any, now: Any, job_id: int, lo: int, hi: int) -> tuple[Row | None, list[Row]]:
    """Claim a pending chunk (`pending → sending`, one more attempt, its request id) if its request id is still
    `request_id_before`, and read its queued messages (id, mobile, custom_id, content, in seq order); returns the
    claim's row (attempts, ambiguous_at; None: lost) and the messages. On PostgreSQL one statement (the UPDATE in
    a WITH): a verification call waits on every round trip. Its statements are built once per process: building
    and executing ORM statements was most of a verification call's claim (bench_call)."""
    params = {"claim_id": chunk_id, "claim_request_id_before": request_id_before, "claim_request_id": request_id,
              "claim_request_id_at": request_id_at, "claim_now": now, "batch_job_id": job_id, "batch_lo": lo,
              "batch_hi": hi}
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        claim, queued = _claim_statements()
        batch = conn.execute(queued, params).all()
        won = conn.execute(claim, params).first()
        return won, list(batch) if won is not None else []
    rows = conn.execute(_claim_in_one(), params).all()
    if not rows:
        return None, []
    return rows[0][:2], [row[2:] for row in rows if row[2] is not None]


@lru_cache(maxsize=1)
def _claim_statements() -> tuple[Update, Select]:
    """The claim of `claim_with_batch` (RETURNING attempts, ambiguous_at) and the read of its queued messages."""
    chunks, messages = Chunk.__table__, Message.__table__
    claim = (update(chunks)
             .where(chunks.c.id == bindparam("claim_id"), chunks.c.status == ChunkStatus.PENDING.value,
                    chunks.c.request_id.is_not_distinct_from(bindparam("claim_request_id_before",
                                                                       type_=chunks.c.request_id.type)))
             .values(status=ChunkStatus.SENDING.value, attempts=chunks.c.attempts + 1,
                     updated_at=bindparam("claim_now", type_=chunks.c.updated_at.type),
                     request_id=bindparam("claim_request_id", type_=chunks.c.request_id.type),
                     request_id_at=bindparam("claim_request_id_at", type_=chunks.c.request_id_at.type))
             .returning(chunks.c.attempts, chunks.c.ambiguous_at))
    queued = (select(messages.c.id, messages.c.mobile, messages.c.custom_id, messages.c.content)
              .where(messages.c.job_id == bindparam("batch_job_id"), messages.c.seq >= bindparam("batch_lo"),
                     messages.c.seq < bindparam("batch_hi"), messages.c.status == MessageStatus.QUEUED.value)
              .order_by(messages.c.seq))
    return claim, queued


@lru_cache(maxsize=1)
def _claim_in_one() -> Select:
    """PostgreSQL: the claim in a WITH, its queued messages outer-joined (no message: one row of the claim)."""
    claim, queued = _claim_statements()
    won, messages = claim.cte("won"), Message.__table__
    batch = queued.whereclause
    return (select(*won.c, messages.c.id, messages.c.mobile, messages.c.custom_id, messages.c.content)
            .select_from(won).outerjoin(messages, batch).order_by(messages.c.seq))


def update_chunk(session: Session, chunk_id: int, **values: Any) -> None:
    """Set columns of one chunk (a statement built once per set of column names, executed as Core)."""
    session.connection().execute(_chunk_update(tuple(sorted(values))), {
        "chunk_id": chunk_id, **{f"new_{name}": value for name, value in values.items()}})


@lru_cache(maxsize=64)
def _chunk_update(names: tuple[str, ...]) -> Update:
    """UPDATE chunk SET <names> WHERE id = :chunk_id, each value bound as `new_<name>` with its column's type."""
    chunks = Chunk.__table__
    return (update(chunks).where(chunks.c.id == bindparam("chunk_id"))
            .values({name: bindparam(f"new_{name}", type_=chunks.c[name].type) for name in names}))


def record_send_results(session: Session, results: Sequence[tuple[int, str, str | None]], *, sent_at: Any) -> None:
    """Write what a send answered, per message `(id, status, provider_msg_id)`. The status replaces only
    `queued` or `unknown`: a report applied while the answer was on its way is the truth and stays."""
    if not results:
        return
    table: Table = Message.__table__
    open_ = (MessageStatus.QUEUED.value, MessageStatus.UNKNOWN.value)
    if session.connection().dialect.name == "postgresql":
        _unnest_update(session, table, f"status = CASE WHEN t.status IN ('{open_[0]}', '{open_[1]}') THEN v.status "
                       "ELSE t.status END, provider_msg_id = v.provider_msg_id, submitted_at = %b, updated_at = %b",
                       ["id", "status", "provider_msg_id"], results, constants=[sent_at, sent_at])
        return
    quote = session.connection().dialect.identifier_preparer.quote
    sql = (f"UPDATE {quote(table.name)} SET status = CASE WHEN status IN (?, ?) THEN ? ELSE status END, "
           "provider_msg_id = ?, submitted_at = ?, updated_at = ? WHERE id = ?")
    names = ["status", "status", "status", "provider_msg_id", "submitted_at", "updated_at", "id"]
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
    if value is None:
        return None
    if value.isascii() and "\x00" not in value:  # the usual id or state: nothing to replace
        return value if len(value) <= width else value[:width]
    return storable(value)[:width]

