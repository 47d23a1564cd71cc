"""Event bodies (DESIGN §9) from outbox rows, built by the database itself (PostgreSQL `json_build_object`,
SQLite's JSON1): what changed is in the row, what never changes (custom id, mobile, account, kind) is joined from
the message and the job. 500 events become one JSON text in C, not 500 Python dicts (most of a delivery's CPU).
"""
from __future__ import annotations

from collections.abc import Sequence
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


def _pairs(*pairs: str) -> str:
    return ", ".join(pairs)


def body_sql(sqlite: bool, where: str = "TRUE", source: str = "webhook_event") -> str:
    """One SELECT of the whole `{"events": [...]}` text for the rows of `source` (alias `e`, the columns of
    `webhook_event`) matching `where`."""
    if sqlite:
        obj, created = "json_object", "replace(e.created_at, ' ', 'T') || 'Z'"
        count = "coalesce(json_extract(e.counts, '$.{s}'), 0)"
    else:
        obj, created = "json_build_object", "to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        count = "coalesce((e.counts->>'{s}')::bigint, 0)"
    counts = f"{obj}(" + ", ".join(f"'{s}', {count.format(s=s)}" for s in STATUSES) + ")"
    head = _pairs(f"'id', '{EVENT_ID_PREFIX}' || e.id", "'type', e.type", f"'created_at', {created}",
                  "'job_id', e.job_id")
    job_event = f"{obj}({head}, " + _pairs("'status', e.status", "'reason', e.reason", f"'counts', {counts}") + ")"
    message_event = f"{obj}({head}, " + _pairs(
        "'account', j.account", "'kind', j.kind", "'custom_id', m.custom_id", "'mobile', m.mobile",
        "'status', e.status", "'provider_state', e.provider_state", "'provider_desc', e.provider_desc",
        "'seq', e.id") + ")"
    rows = (f"SELECT e.id, CASE WHEN e.message_id IS NULL THEN {job_event} ELSE {message_event} END AS ev "
            f"FROM {source} e JOIN job j ON j.id = e.job_id LEFT JOIN message m ON m.id = e.message_id "
            f"WHERE {where}")
    if sqlite:  # json_group_array keeps the subquery's order
        return f"SELECT json_object('events', json_group_array(json(ev))) FROM ({rows} ORDER BY e.id)"
    return (f"SELECT json_build_object('events', coalesce(json_agg(ev ORDER BY id), '[]'::json))::text "
            f"FROM ({rows}) x")


def delivery_body(session: Session, delivery_id: int) -> bytes:
    """The request body of one delivery: its events in id order."""
    sql = body_sql(is_sqlite(session.get_bind()), "e.delivery_id = :d")
    return session.execute(text(sql), {"d": delivery_id}).scalar_one().encode("utf-8")


def events_body(session: Session, event_ids: Sequence[int]) -> bytes:
    """The request body that would carry these events (tests, tools)."""
    sql = text(body_sql(is_sqlite(session.get_bind()), "e.id IN :ids")).bindparams(
        bindparam("ids", expanding=True))
    return session.execute(sql, {"ids": list(event_ids)}).scalar_one().encode("utf-8")


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
