"""Deliveries: claim a receiver's events into a delivery and commit, then POST them signed, then record the
answer (DESIGN §7.3: commit, then act). A retry resends the same events (same ids), signed afresh.

A delivery is `sending` while a worker holds it; one left `sending` longer than `webhook_stale_sending_s` was
lost with its worker and is tried again. While a receiver has a `failing` delivery, only that one is retried
(a receiver that is down gets one request per backoff step, not a flood); its new events wait unclaimed.
On PostgreSQL claims use `FOR UPDATE SKIP LOCKED`, so several workers can send for one receiver at once.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from sqlalchemy import and_, exists, func, insert, or_, select, text, update
from sqlmodel import Session

from models import WebhookDelivery, WebhookEvent, WebhookReceiver, is_sqlite, session_scope, utcnow
from models.statuses import DeliveryStatus
from msgrelay.settings import Settings
from msgrelay.webhooks import events, policy, signing

#: deliveries that wait for a try (an operator's retry makes a dead one `pending` again)
WAITING = (DeliveryStatus.PENDING, DeliveryStatus.FAILING)
USER_AGENT = "msgrelay-webhooks/1"
_CLAIM_PG = f"""
WITH picked AS MATERIALIZED (
    SELECT id FROM webhook_event WHERE receiver_id = :r AND delivery_id IS NULL
    ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED
), made AS (
    INSERT INTO webhook_delivery (receiver_id, status, events, attempts, first_attempt_at, next_attempt_at,
                                  created_at, updated_at)
    SELECT :r, :sending, count(*), 0, :now, :now, :now, :now FROM picked HAVING count(*) > 0
    RETURNING id
), claimed AS (
    UPDATE webhook_event ev SET delivery_id = made.id FROM picked, made WHERE ev.id = picked.id
    RETURNING ev.*
)
SELECT made.id, ({events.body_sql(False, source="claimed")}) FROM made
"""
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
    unclaimed = exists().where(WebhookEvent.receiver_id == WebhookReceiver.id, WebhookEvent.delivery_id.is_(None))
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


def _claim_new_pg(session: Session, receiver_id: int, batch: int, now: datetime) -> tuple[int, bytes] | None:
    """PostgreSQL, one statement: pick the oldest unclaimed events (a materialised pick: an `IN (… LIMIT … SKIP
    LOCKED)` subquery may be rescanned and take more), make their delivery, tie them to it, build its body."""
    row = session.execute(text(_CLAIM_PG), {"r": receiver_id, "n": batch, "now": now,
                                            "sending": DeliveryStatus.SENDING}).first()
    return (row[0], row[1].encode("utf-8")) if row else None


def _claim_new_sqlite(session: Session, receiver_id: int, batch: int, now: datetime) -> tuple[int, bytes] | None:
    """SQLite (one writer: the transaction sees and takes the rows alone): the same in three statements."""
    delivery_id = session.scalars(insert(WebhookDelivery).values(
        receiver_id=receiver_id, status=DeliveryStatus.SENDING, events=0, attempts=0, first_attempt_at=now,
        next_attempt_at=now, created_at=now, updated_at=now).returning(WebhookDelivery.id)).one()
    oldest = (select(WebhookEvent.id).where(WebhookEvent.receiver_id == receiver_id,
                                            WebhookEvent.delivery_id.is_(None))
              .order_by(WebhookEvent.id).limit(batch))
    taken = session.execute(update(WebhookEvent).where(WebhookEvent.id.in_(oldest.scalar_subquery()))
                            .values(delivery_id=delivery_id).execution_options(synchronize_session=False)).rowcount
    if not taken:
        session.rollback()  # no empty delivery row
        return None
    session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(events=taken))
    return delivery_id, events.delivery_body(session, delivery_id)


def claim(receiver_id: int, settings: Settings) -> tuple[int, bytes] | None:
    """Claim the receiver's next piece of work with its body, committed: a due delivery first, else (unless one
    is failing) its oldest unclaimed events in a new one. None: nothing to do now."""
    now = utcnow()
    with session_scope() as session:
        if (due := _claim_due(session, receiver_id, now)) is not None:
            return due, events.delivery_body(session, due)
        if _is_failing(session, receiver_id):
            return None
        claim_new = _claim_new_sqlite if is_sqlite(session.get_bind()) else _claim_new_pg
        return claim_new(session, receiver_id, settings.webhook_batch, now)


def record(delivery_id: int, answer: Answer, settings: Settings) -> str:
    """Write what a try came to (an acknowledgement in one statement); returns the delivery's new status."""
    now = utcnow()
    d = WebhookDelivery
    with session_scope() as session:
        if answer.ok:
            session.execute(update(d).where(d.id == delivery_id, d.status != DeliveryStatus.DELIVERED).values(
                status=DeliveryStatus.DELIVERED, delivered_at=now, last_error=None, last_status=answer.status,
                attempts=d.attempts + 1, updated_at=now))
            return DeliveryStatus.DELIVERED
        row = session.get(d, delivery_id, with_for_update=True)
        if row is None:
            return DeliveryStatus.DEAD
        row.attempts, row.last_status, row.updated_at = row.attempts + 1, answer.status, now
        if row.status == DeliveryStatus.SENDING:  # not reclaimed meanwhile (a reclaimed one is due again already)
            row.last_error = answer.error
            if policy.is_dead(row.first_attempt_at or now, now, settings):
                row.status = DeliveryStatus.DEAD
            else:
                row.status = DeliveryStatus.FAILING
                row.next_attempt_at = now + timedelta(seconds=policy.next_wait_s(row.attempts, settings))
        session.add(row)
        return row.status


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
    while time.monotonic() < deadline:
        claimed = claim(receiver_id, settings)
        if claimed is None:
            break
        delivery_id, body = claimed
        answer = post(url, body, secrets, timeout_s=settings.webhook_timeout_s, delivery_id=delivery_id)
        status = record(delivery_id, answer, settings)
        done[status] = done.get(status, 0) + 1
        if status != DeliveryStatus.DELIVERED:
            break  # the receiver is not well: its backoff decides when to come back
    return done


def dispatch(settings: Settings) -> list[int]:
    """Reclaim lost deliveries and list the receivers with work (beat's tick)."""
    now = utcnow()
    with session_scope() as session:
        reclaim_stale(session, settings, now)
        return receivers_with_work(session, now)
