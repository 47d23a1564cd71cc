"""Producer webhooks on their own queue: beat's dispatch fans out one drain per receiver and slot, so one slow or
dead receiver never holds back another, nor sending and reports."""
from __future__ import annotations

from celery.utils.log import get_task_logger

from models.statuses import Queue
from msgrelay.limits import account_lock, get_redis
from msgrelay.logs import log_context
from msgrelay.settings import get_settings
from msgrelay.webhooks import deliver
from tasks.app import app

log = get_task_logger(__name__)
LOCK_PURPOSE = "webhook"


def _lock_name(receiver_id: int, slot: int) -> str:
    return f"{receiver_id}:{slot}"


@app.task(name="tasks.dispatch_webhooks")
def dispatch_webhooks() -> int:
    """Reclaim lost deliveries; one drain_webhooks per receiver with work and free slot."""
    s = get_settings()
    client = get_redis()
    fanned = 0
    for receiver_id in deliver.dispatch(s):
        for slot in range(s.webhook_parallel):
            if client.exists(f"msgrelay:lock:{LOCK_PURPOSE}:{_lock_name(receiver_id, slot)}"):
                continue  # that slot is draining already
            drain_webhooks.apply_async(args=[receiver_id, slot], queue=Queue.WEBHOOKS,
                                       expires=s.webhook_dispatch_every_s * 4)
            fanned += 1
    return fanned


@app.task(name="tasks.drain_webhooks", acks_late=True, reject_on_worker_lost=True)
def drain_webhooks(receiver_id: int, slot: int) -> dict:
    """Send one receiver's due deliveries and new events for a while, holding that receiver's slot lock (its
    expiry equals the stale-sending limit: a lost worker's slot frees itself when its delivery is reclaimed)."""
    s = get_settings()
    lock = account_lock(_lock_name(receiver_id, slot), LOCK_PURPOSE, timeout_s=s.webhook_stale_sending_s)
    if not lock.acquire():
        return {}
    with log_context(receiver_id=receiver_id):
        try:
            done = deliver.drain(receiver_id, s)
        finally:
            try:
                lock.release()
            except Exception:  # expired meanwhile: nothing to release
                pass
        if done:
            log.info("webhooks to receiver %s: %s", receiver_id, done)
        return done
