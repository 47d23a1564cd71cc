"""Deliveries: claim a receiver's events into a delivery and commit, then POST them signed, then record the
answer (DESIGN §7.3: commit, then act). A retry resends the same events (same ids), signed afresh.

A delivery is `sending` while a worker holds it; one left `sending` longer than `webhook_stale_sending_s` was
lost with its worker and is tried again. While a receiver has a `failing` delivery, only that one is retried
(a receiver that is down gets one request per backoff step, not a flood); its new events wait unclaimed.
Claims of new events take turns on the receiver's cursor (one statement on PostgreSQL, made in the transaction that
records the previous acknowledgement); the POSTs of several workers for one receiver then run at once. Due
deliveries are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from sqlalchemy import and_, exists, func, insert, or_, select, text, tuple_, update
from sqlmodel import Session

from models import WebhookDelivery, WebhookEvent, WebhookReceiver, is_sqlite, session_scope, utcnow
from models.statuses import DeliveryStatus
from msgrelay.settings import Settings
from msgrelay import metrics, right_of_way
from msgrelay.webhooks import events, policy, signing

#: deliveries that wait for a try (an operator's retry makes a dead one `pending` again)
WAITING = (DeliveryStatus.PENDING, DeliveryStatus.FAILING)
USER_AGENT = "msgrelay-webhooks/1"
#: PostgreSQL: the oldest transaction still running; only events of older ones are claimed (none can commit later)
_HORIZON_PG = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
#: PostgreSQL, one statement: lock the receiver's cursor (unless one of its deliveries is failing: new events wait),
#: pick the events after it, make their delivery, move the cursor, read the events (each row with the delivery id).
#: No event row is written.
_CLAIM_NEW_PG = f"""
WITH r AS MATERIALIZED (
    SELECT cursor_xid, cursor_id FROM webhook_receiver w WHERE id = :r AND NOT EXISTS (
        SELECT 1 FROM webhook_delivery f WHERE f.receiver_id = w.id AND f.status = :failing)
    FOR UPDATE
), picked AS MATERIALIZED (
    SELECT e.* FROM webhook_event e  -- the cursor as subqueries: an index range, not a join filter
    WHERE e.receiver_id = :r AND (e.xid, e.id) > ((SELECT cursor_xid FROM r), (SELECT cursor_id FROM r))
      AND e.xid < {_HORIZON_PG}
    ORDER BY e.xid, e.id LIMIT :n
), edge AS MATERIALIZED (
    SELECT xid, id, count(*) OVER () AS n FROM picked ORDER BY xid DESC, id DESC LIMIT 1
), made AS (
    INSERT INTO webhook_delivery (receiver_id, status, events, attempts, first_attempt_at, next_attempt_at,
                                  created_at, updated_at, after_xid, after_id, last_xid, last_id)
    SELECT :r, :sending, edge.n, 0, :now, :now, :now, :now, r.cursor_xid, r.cursor_id, edge.xid, edge.id
    FROM r, edge RETURNING id
), moved AS (
    UPDATE webhook_receiver w SET cursor_xid = edge.xid, cursor_id = edge.id FROM edge WHERE w.id = :r
)
SELECT made.id, x.* FROM made, ({events.rows_sql(False, "picked")}) x
ORDER BY x.xid, x.id
"""
#: PostgreSQL: a claim walks the receiver's index in (xid, id) order and stops after `n` events, however many wait.
#: Planned from estimates (an outbox a job has just grown has no statistics yet) it was a bitmap scan of every
#: unclaimed event and a sort: a claim took 23 ms behind 100,000 waiting events and 75 ms behind 400,000, against
#: 3.4 ms in index order; a receiver back from an outage paid that for every 500 events of its backlog.
_IN_INDEX_ORDER, _AS_PLANNED = "SET LOCAL enable_bitmapscan = off", "SET LOCAL enable_bitmapscan TO DEFAULT"
#: SQLite: the last event to take after the cursor, and how many
_EDGE_SQLITE = ("SELECT xid, id, count(*) OVER () FROM (SELECT xid, id FROM webhook_event WHERE receiver_id = :r "
                "AND (xid, id) > (:xid, :id) ORDER BY xid, id LIMIT :n) picked ORDER BY xid DESC, id DESC LIMIT 1")
_local = threading.local()


@dataclass(frozen=True)
class Answer:
    """What one POST came to: acknowledged (2xx) or not, the HTTP status when there was one, and why not."""

    ok: bool
    status: int | None = None
    error: str | None = None
    text: str = ""  # the start of the receiver's answer (for `msgrelay webhooks test`)


def _http() -> requests.Session:
    """One keep-alive session per thread (deliveries to one receiver reuse their connection)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def _printable(text: str, limit: int) -> str:
    """`text` on one line, at most `limit` characters."""
    return " ".join(text.split())[:limit]


def post(url: str, body: bytes, secrets: list[str], *, timeout_s: float, delivery_id: int | None = None) -> Answer:
    """POST one signed body; any non-2xx answer, timeout or connection error is a failure. Errors name what
    happened, never the URL (it may hold a token) or a secret."""
    if not secrets:
        return Answer(False, None, "MSGRELAY_WEBHOOK_SECRET is not set: nothing is sent unsigned")
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               signing.HEADER: signing.sign(body, secrets)}
    if delivery_id is not None:
        headers["X-Msgrelay-Delivery"] = str(delivery_id)
    try:
        response = _http().post(url, data=body, headers=headers, timeout=(timeout_s, timeout_s),
                                allow_redirects=False)
    except requests.Timeout:
        return Answer(False, None, f"timeout: no answer within {timeout_s:g}s")
    except requests.ConnectionError as exc:
        cause = exc.args[0] if exc.args else exc
        reason = getattr(cause, "reason", None) or cause
        return Answer(False, None, _printable(f"connection failed: {type(reason).__name__}", 255))
    except requests.RequestException as exc:
        return Answer(False, None, f"request failed: {type(exc).__name__}")
    text = response.text[:500]
    if 200 <= response.status_code < 300:
        return Answer(True, response.status_code, text=text)
    return Answer(False, response.status_code, _printable(f"HTTP {response.status_code}: {text}", 255), text)


def reclaim_stale(session: Session, settings: Settings, now: datetime) -> int:
    """Deliveries `sending` for longer than a worker could have: their worker was lost mid-POST. They are due
    again now (the receiver may have them: it deduplicates by event id)."""
    lost = now - timedelta(seconds=settings.webhook_stale_sending_s)
    return session.execute(
        update(WebhookDelivery).where(WebhookDelivery.status == DeliveryStatus.SENDING,
                                      WebhookDelivery.updated_at < lost)
        .values(status=DeliveryStatus.FAILING, next_attempt_at=now, updated_at=now,
                last_error="worker lost while sending; sent again", attempts=WebhookDelivery.attempts + 1)
    ).rowcount


def receivers_with_work(session: Session, now: datetime) -> list[int]:
    """Receivers with a delivery due, or with unclaimed events and no failing delivery (whose new events wait)."""
    unclaimed = exists().where(WebhookEvent.receiver_id == WebhookReceiver.id,
                               tuple_(WebhookEvent.xid, WebhookEvent.id)
                               > tuple_(WebhookReceiver.cursor_xid, WebhookReceiver.cursor_id))
    failing = exists().where(WebhookDelivery.receiver_id == WebhookReceiver.id,
                             WebhookDelivery.status == DeliveryStatus.FAILING)
    due = exists().where(WebhookDelivery.receiver_id == WebhookReceiver.id, WebhookDelivery.status.in_(WAITING),
                         WebhookDelivery.next_attempt_at <= now)
    return list(session.scalars(select(WebhookReceiver.id).where(or_(and_(unclaimed, ~failing), due))
                                .order_by(WebhookReceiver.id)))


def _claim_due(session: Session, receiver_id: int, now: datetime) -> int | None:
    """Move one due delivery of the receiver to `sending`; its id, or None."""
    candidate = session.scalars(
        select(WebhookDelivery.id).where(WebhookDelivery.receiver_id == receiver_id,
                                         WebhookDelivery.status.in_(WAITING), WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at).limit(1).with_for_update(skip_locked=True)).first()
    if candidate is None:
        return None
    changed = session.execute(  # compare-and-set: SQLite has no row locks, a second worker finds it taken
        update(WebhookDelivery).where(WebhookDelivery.id == candidate, WebhookDelivery.status.in_(WAITING))
        .values(status=DeliveryStatus.SENDING, updated_at=now,
                first_attempt_at=func.coalesce(WebhookDelivery.first_attempt_at, now))
    ).rowcount
    return candidate if changed else None


def _is_failing(session: Session, receiver_id: int) -> bool:
    """Whether the receiver has a delivery waiting to be retried (new events then wait)."""
    return session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.receiver_id == receiver_id,
                                                            WebhookDelivery.status == DeliveryStatus.FAILING)
                           .limit(1)).first() is not None


def _claim_new_sqlite(session: Session, receiver_id: int, batch: int, now: datetime) -> tuple[int, bytes] | None:
    """SQLite: the same as `_CLAIM_NEW_PG` in several statements (the first write takes the database's write lock,
    so the transaction reads and moves the cursor alone)."""
    r = WebhookReceiver
    cursor = session.execute(update(r.__table__).where(r.id == receiver_id).values(cursor_xid=r.cursor_xid)
                             .returning(r.cursor_xid, r.cursor_id)).first()
    if cursor is None or _is_failing(session, receiver_id):
        return None
    edge = session.execute(text(_EDGE_SQLITE), {"r": receiver_id, "xid": cursor[0], "id": cursor[1], "n": batch}).first()
    if edge is None:
        return None
    delivery_id = session.scalars(insert(WebhookDelivery).values(
        receiver_id=receiver_id, status=DeliveryStatus.SENDING, events=edge[2], attempts=0, first_attempt_at=now,
        next_attempt_at=now, created_at=now, updated_at=now, after_xid=cursor[0], after_id=cursor[1],
        last_xid=edge[0], last_id=edge[1]).returning(WebhookDelivery.id)).one()
    session.execute(update(r.__table__).where(r.id == receiver_id).values(cursor_xid=edge[0], cursor_id=edge[1]))
    return delivery_id, events.delivery_body(session, delivery_id)


def claim_new(session: Session, receiver_id: int, batch: int, now: datetime) -> tuple[int, bytes] | None:
    """The receiver's oldest unclaimed events (at most `batch`) in a new delivery with its body, unless one of its
    deliveries is failing; None: nothing to claim."""
    if is_sqlite(session.get_bind()):
        return _claim_new_sqlite(session, receiver_id, batch, now)
    session.execute(text(_IN_INDEX_ORDER))
    rows = session.execute(text(_CLAIM_NEW_PG), {"r": receiver_id, "n": batch, "now": now,
                                                 "sending": DeliveryStatus.SENDING,
                                                 "failing": DeliveryStatus.FAILING}).all()
    session.execute(text(_AS_PLANNED))
    return (rows[0][0], events.body_of_rows(row[1:] for row in rows)) if rows else None


def claim(receiver_id: int, settings: Settings) -> tuple[int, bytes] | None:
    """Claim the receiver's next piece of work with its body, committed: a due delivery first, else (unless one
    is failing) its oldest unclaimed events in a new one. None: nothing to do now."""
    now = utcnow()
    with session_scope() as session:
        if (due := _claim_due(session, receiver_id, now)) is not None:
            return due, events.delivery_body(session, due)
        return claim_new(session, receiver_id, settings.webhook_batch, now)


def record(delivery_id: int, answer: Answer, settings: Settings, *,
           then_claim: int | None = None) -> tuple[str, tuple[int, bytes] | None]:
    """Write what a try came to (an acknowledgement in one statement); returns the delivery's new status and, for
    an acknowledgement with `then_claim` (a receiver id), that receiver's next new events claimed in the same
    transaction (one round of the database less per delivery)."""
    now = utcnow()
    d = WebhookDelivery
    with session_scope() as session:
        if answer.ok:
            made = session.execute(update(d.__table__).where(d.id == delivery_id, d.status != DeliveryStatus.DELIVERED)
                                   .values(status=DeliveryStatus.DELIVERED, delivered_at=now, last_error=None,
                                           last_status=answer.status, attempts=d.attempts + 1, updated_at=now)
                                   .returning(d.created_at)).scalar()
            if made is not None:
                metrics.WEBHOOK_LAG.observe((now - made).total_seconds())
            claimed = None if then_claim is None else claim_new(session, then_claim, settings.webhook_batch, now)
            return DeliveryStatus.DELIVERED, claimed
        row = session.get(d, delivery_id, with_for_update=True)
        if row is None:
            return DeliveryStatus.DEAD, None
        row.attempts, row.last_status, row.updated_at = row.attempts + 1, answer.status, now
        if row.status == DeliveryStatus.SENDING:  # not reclaimed meanwhile (a reclaimed one is due again already)
            row.last_error = answer.error
            if policy.is_dead(row.first_attempt_at or now, now, settings):
                row.status = DeliveryStatus.DEAD
            else:
                row.status = DeliveryStatus.FAILING
                row.next_attempt_at = now + timedelta(seconds=policy.next_wait_s(row.attempts, settings))
        session.add(row)
        return row.status, None


def receiver_url(receiver_id: int) -> str:
    """A receiver's URL."""
    with session_scope() as session:
        return session.scalars(select(WebhookReceiver.url).where(WebhookReceiver.id == receiver_id)).one()


def drain(receiver_id: int, settings: Settings, *, budget_s: float | None = None) -> dict[str, int]:
    """Send the receiver's work until none is left, a try fails or `budget_s` has passed; counts by outcome."""
    deadline = time.monotonic() + (settings.webhook_drain_s if budget_s is None else budget_s)
    done: dict[str, int] = {}
    url = receiver_url(receiver_id)
    secrets = settings.webhook_secrets()
    give_way = right_of_way.waiter(settings.right_of_way_s, "webhook")  # throughput work: verification calls first
    give_way()
    claimed = claim(receiver_id, settings)
    while claimed is not None:
        delivery_id, body = claimed
        give_way()
        answer = post(url, body, secrets, timeout_s=settings.webhook_timeout_s, delivery_id=delivery_id)
        more = receiver_id if time.monotonic() < deadline else None
        status, claimed = record(delivery_id, answer, settings, then_claim=more)
        done[status] = done.get(status, 0) + 1
        metrics.WEBHOOK_DELIVERIES.labels(status).inc()
        # not delivered: the receiver is not well, its backoff decides when to come back (nothing was claimed)
    return done


def dispatch(settings: Settings) -> list[int]:
    """Reclaim lost deliveries and list the receivers with work (beat's tick)."""
    now = utcnow()
    with session_scope() as session:
        reclaim_stale(session, settings, now)
        return receivers_with_work(session, now)
