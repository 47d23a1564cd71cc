"""send_chunk: a thin task over msgrelay.send.send_chunk; retry policy lives there and in the settings."""
from __future__ import annotations

from collections.abc import Iterable

from celery.utils.log import get_task_logger

from msgrelay import send
from msgrelay.accounts import get_accounts
from msgrelay.settings import get_settings
from tasks.app import app

log = get_task_logger(__name__)


def enqueue_chunks(chunks: Iterable[tuple[int, str]]) -> None:
    """Publish one send_chunk per (chunk id, queue); ids only, never payloads or secrets."""
    with app.producer_or_acquire() as producer:  # one connection for the whole batch
        for chunk_id, queue in chunks:
            send_chunk.apply_async(args=[chunk_id], queue=queue, producer=producer)


@app.task(name="tasks.send_chunk", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def send_chunk(self, chunk_id: int, attempt: int = 0) -> str:
    """Send one chunk at most once; retry transient errors with backoff (`attempt` counts real tries)."""
    outcome = send.send_chunk(chunk_id, retries=attempt, settings=get_settings(), accounts=get_accounts())
    log.info("chunk %s: %s %s", chunk_id, outcome.action, outcome.detail)
    if outcome.new_chunks:
        enqueue_chunks(outcome.new_chunks)
    if outcome.action == "retry":
        next_attempt = attempt + 1 if outcome.counts_as_attempt else attempt
        raise self.retry(args=[chunk_id], kwargs={"attempt": next_attempt}, countdown=outcome.countdown,
                         max_retries=None)
    return outcome.action
