"""What operators do with deliveries: list them, retry one, send a signed sample to a URL."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlmodel import Session

from models import Job, WebhookDelivery, WebhookReceiver, utcnow
from models.statuses import DeliveryStatus
from msgrelay.settings import Settings
from msgrelay.webhooks import deliver, events
from msgrelay.webhooks.receivers import check_url, shown_url
from providers.errors import InvalidInput, NotFound


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def delivery_view(d: WebhookDelivery, url: str) -> dict[str, Any]:
    """A delivery as the API, CLI and console show it (the receiver's URL without its password or query values)."""
    return {"id": d.id, "receiver_url": shown_url(url), "status": d.status, "events": d.events, "attempts": d.attempts,
            "last_status": d.last_status, "last_error": d.last_error, "created_at": _iso(d.created_at),
            "first_attempt_at": _iso(d.first_attempt_at), "next_attempt_at": _iso(d.next_attempt_at),
            "delivered_at": _iso(d.delivered_at)}


def list_deliveries(session: Session, *, status: DeliveryStatus | None = None, limit: int = 100,
                    offset: int = 0, jobs: ColumnElement[bool] | None = None) -> list[dict[str, Any]]:
    """Newest deliveries first, optionally of one status, and only to receivers of the jobs `jobs` selects."""
    query = select(WebhookDelivery, WebhookReceiver.url).join(WebhookReceiver,
                                                              WebhookReceiver.id == WebhookDelivery.receiver_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if jobs is not None:
        query = query.where(WebhookDelivery.receiver_id.in_(receivers_of(jobs)))
    rows = session.execute(query.order_by(WebhookDelivery.id.desc()).limit(limit).offset(offset))
    return [delivery_view(d, url) for d, url in rows]


def receivers_of(jobs: ColumnElement[bool]):
    """The receivers the jobs `jobs` selects send their events to (a subquery)."""
    return select(Job.webhook_receiver_id).where(jobs, Job.webhook_receiver_id.is_not(None)).distinct()


def retry_delivery(session: Session, delivery_id: int, *, jobs: ColumnElement[bool] | None = None) -> dict[str, Any]:
    """Make a dead or failing delivery pending now, with a fresh retry schedule (same events, same ids); NotFound
    when it is to no receiver of the jobs `jobs` selects."""
    d = session.get(WebhookDelivery, delivery_id)
    if d is not None and jobs is not None and d.receiver_id not in set(session.scalars(receivers_of(jobs))):
        d = None
    if d is None:
        raise NotFound("id", f"no webhook delivery {delivery_id}")
    if d.status not in (DeliveryStatus.DEAD, DeliveryStatus.FAILING):
        raise InvalidInput("status", f"only a dead or failing delivery can be retried; delivery {delivery_id} is "
                                     f"{d.status}")
    now = utcnow()
    d.status, d.next_attempt_at, d.first_attempt_at, d.attempts, d.updated_at = (
        DeliveryStatus.PENDING, now, None, 0, now)
    session.add(d)
    session.flush()
    return delivery_view(d, session.get(WebhookReceiver, d.receiver_id).url)


@dataclass(frozen=True)
class TestAnswer:
    """What a receiver answered to a signed sample event."""

    ok: bool
    status: int | None
    error: str | None
    body: bytes
    answer: str


def send_test(url: str, settings: Settings) -> TestAnswer:
    """POST one signed sample event to `url` and report what came back."""
    url = check_url("url", url)
    body = events.body_of([events.sample_event(utcnow())])
    answer = deliver.post(url, body, settings.webhook_secrets(), timeout_s=settings.webhook_timeout_s)
    return TestAnswer(answer.ok, answer.status, answer.error, body, answer.text)
