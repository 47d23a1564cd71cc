"""Event bodies (DESIGN §9) from outbox rows: what changed is in the row, what never changes (custom id, mobile,
account, kind) is joined from the message and the job. The database returns plain rows; the webhooks worker makes
the JSON with orjson (1.3 µs an event), which costs the database less than building it there (PostgreSQL's
`json_build_object` took ~5.6 µs an event of the database's CPU, which sending and reports share).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson
from sqlalchemy import bindparam, text
from sqlmodel import Session

from models import is_sqlite
from models.statuses import MessageStatus

EVENT_ID_PREFIX = "evt_"
STATUSES = [s.value for s in MessageStatus]


def event_id(row_id: int) -> str:
    """The stable id of the event kept in outbox row `row_id`."""
    return f"{EVENT_ID_PREFIX}{row_id}"


def rows_sql(sqlite: bool, source: str) -> str:
    """The SELECT of what the events of `source` (a table or subquery with `webhook_event`'s columns) say, in
    (xid, id) order, one row each as `body_of_rows` reads it."""
    created = ("replace(e.created_at, ' ', 'T') || 'Z'" if sqlite else
               "to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
    return (f"SELECT e.id, e.type, {created}, e.job_id, e.message_id, coalesce(m.account, j.account), j.kind, "
            f"m.custom_id, m.mobile, "
            f"e.status, e.provider_state, e.provider_desc, e.reason, e.counts, e.xid "
            f"FROM {source} e JOIN job j ON j.id = e.job_id LEFT JOIN message m ON m.id = e.message_id "
            f"ORDER BY e.xid, e.id")


def body_of_rows(rows: Iterable[Sequence[Any]]) -> bytes:
    """The request body `{"events": [...]}` of rows read by `rows_sql`."""
    told = []
    for (row_id, kind_of, created, job_id, message_id, account, kind, custom_id, mobile, status, state, desc,
         reason, counts, _xid) in rows:
        head = {"id": f"{EVENT_ID_PREFIX}{row_id}", "type": kind_of, "created_at": created, "job_id": job_id}
        if message_id is None:
            counts = orjson.loads(counts) if isinstance(counts, str) else counts or {}
            told.append({**head, "status": status, "reason": reason,
                         "counts": {s: counts.get(s, 0) for s in STATUSES}})
        else:
            told.append({**head, "account": account, "kind": kind, "custom_id": custom_id, "mobile": mobile,
                         "status": status, "provider_state": state, "provider_desc": desc, "seq": row_id})
    return orjson.dumps({"events": told})


#: a delivery's events: its receiver's after its `after` position up to its `last`, given as values and with the
#: count as a LIMIT (joined to the delivery row the planner scanned the whole table; without the LIMIT it guessed a
#: third of the table for the range and hashed all messages)
DELIVERY_EVENTS = ("(SELECT * FROM webhook_event WHERE receiver_id = :r AND (xid, id) > (:after_xid, :after_id) "
                   "AND (xid, id) <= (:last_xid, :last_id) ORDER BY xid, id LIMIT :events)")


def delivery_body(session: Session, delivery_id: int) -> bytes:
    """The request body of one delivery: its events in (xid, id) order."""
    d = session.execute(text("SELECT receiver_id AS r, after_xid, after_id, last_xid, last_id, events "
                             "FROM webhook_delivery WHERE id = :d"), {"d": delivery_id}).mappings().one()
    return body_of_rows(session.execute(text(rows_sql(is_sqlite(session.get_bind()), DELIVERY_EVENTS)), dict(d)))


def events_body(session: Session, event_ids: Sequence[int]) -> bytes:
    """The request body that would carry these events (tests, tools)."""
    sql = text(rows_sql(is_sqlite(session.get_bind()), "(SELECT * FROM webhook_event WHERE id IN :ids)")).bindparams(
        bindparam("ids", expanding=True))
    return body_of_rows(session.execute(sql, {"ids": list(event_ids)}))


def _iso(when: datetime) -> str:
    """ISO 8601 in UTC with a Z."""
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def body_of(events: list[dict[str, Any]]) -> bytes:
    """A request body from events given as dicts (the sample event)."""
    return orjson.dumps({"events": events})


def sample_event(now: datetime) -> dict[str, Any]:
    """A made-up `message.delivered` event for `msgrelay webhooks test` (id `evt_test_…`, job 0)."""
    return {"id": f"{EVENT_ID_PREFIX}test_{int(now.timestamp())}", "type": "message.delivered",
            "created_at": _iso(now), "job_id": 0, "account": "test", "kind": "sms", "custom_id": "test-0",
            "mobile": "13800000000", "status": MessageStatus.DELIVERED.value, "provider_state": "DELIVRD",
            "provider_desc": "sample event from msgrelay webhooks test", "seq": 0}
