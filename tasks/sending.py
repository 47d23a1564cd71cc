"""send_chunk: a thin task over msgrelay.send.send_chunk; the retry policy is msgrelay.retry's."""
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
def send_chunk(self, chunk_id: int) -> str:
    """Send one chunk at most once; a retry waits the countdown the policy chose (tries are counted in the
    chunk's row, so the task message carries nothing but the id)."""
    outcome = send.send_chunk(chunk_id, settings=get_settings(), accounts=get_accounts())
    log.info("chunk %s: %s %s", chunk_id, outcome.action, outcome.detail)
    if outcome.new_chunks:
        enqueue_chunks(outcome.new_chunks)
    if outcome.action == "retry":
        raise self.retry(args=[chunk_id], countdown=outcome.countdown, max_retries=None)
    return outcome.action
