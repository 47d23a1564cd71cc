"""`/metrics`: what every process counted where it happened (prometheus_client's multiprocess files, see
`msgrelay.metrics`), plus what is read at scrape time from state that is already kept: messages and jobs per
status (the job counters, never a scan of the message table), chunks waiting and why, Celery queue depths,
the newest balance of each account, webhook deliveries not yet delivered."""
from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select

from models import BalanceSnapshot, Chunk, Job, WebhookDelivery, session_scope, utcnow
from models.counts import status_totals
from models.statuses import ChunkStatus, DeliveryStatus, JobStatus, Queue
from msgrelay.metrics import worker_registry


def render() -> bytes:
    """The whole exposition: counted metrics first, then the scrape-time gauges."""
    counted = worker_registry()
    return generate_latest(counted if counted is not None else REGISTRY) + generate_latest(_state())


def _state() -> CollectorRegistry:
    """Gauges read from the database and Redis now."""
    registry = CollectorRegistry()
    messages = Gauge("msgrelay_messages", "Messages per status", ["status"], registry=registry)
    jobs = Gauge("msgrelay_jobs", "Jobs per status", ["status"], registry=registry)
    waiting = Gauge("msgrelay_chunks_waiting", "Pending chunks not sent yet, by what they wait for", ["reason"],
                    registry=registry)
    depth = Gauge("msgrelay_queue_depth", "Tasks waiting in each Celery queue", ["queue"], registry=registry)
    balance = Gauge("msgrelay_balance", "The newest balance the provider gave, by account and product",
                    ["account", "product"], registry=registry)
    undelivered = Gauge("msgrelay_webhook_deliveries_open", "Webhook deliveries not delivered, by status",
                        ["status"], registry=registry)
    now = utcnow()
    with session_scope() as session:
        for status, n in status_totals(session).items():
            messages.labels(status).set(n)
        for status, n in session.execute(select(Job.status, func.count()).group_by(Job.status)):
            jobs.labels(status).set(n)
        pending = select(func.count()).select_from(Chunk).join(Job, Job.id == Chunk.job_id).where(
            Chunk.status == ChunkStatus.PENDING)
        waiting.labels("window").set(session.scalar(pending.where(Job.waiting_until.is_not(None),
                                                                  Job.status == JobStatus.RUNNING)))
        waiting.labels("pause").set(session.scalar(pending.where(Job.status == JobStatus.PAUSED)))
        waiting.labels("schedule").set(session.scalar(pending.where(Job.status == JobStatus.QUEUED)))
        waiting.labels("backoff").set(session.scalar(pending.where(
            Job.status == JobStatus.RUNNING, Job.waiting_until.is_(None), Chunk.next_attempt_at > now)))
        newest = (select(func.max(BalanceSnapshot.id)).group_by(BalanceSnapshot.account, BalanceSnapshot.product))
        for snap in session.scalars(select(BalanceSnapshot).where(BalanceSnapshot.id.in_(newest))):
            balance.labels(snap.account, snap.product or "").set(float(snap.amount))
        for status, n in session.execute(select(WebhookDelivery.status, func.count()).where(
                WebhookDelivery.status != DeliveryStatus.DELIVERED).group_by(WebhookDelivery.status)):
            undelivered.labels(status).set(n)
    try:
        from msgrelay.limits import get_redis
        from msgrelay.settings import get_settings
        redis = get_redis(get_settings().effective_broker_url())
        for queue in Queue:  # kombu keeps a queue's priority steps under suffixed keys
            depth.labels(queue.value).set(sum(redis.llen(key) for key in
                                              (queue.value, *(f"{queue.value}\x06\x16{p}" for p in (3, 6, 9)))))
    except Exception:  # Redis down: the other metrics still answer (/healthz says what is wrong)
        pass
    return registry
