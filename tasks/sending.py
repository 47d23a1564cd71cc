"""send_chunk: a thin task over msgrelay.send.send_chunk; the retry policy is msgrelay.retry's."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery.utils.log import get_task_logger
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from models import Chunk, Job, session_scope
from models.statuses import Queue
from msgrelay import right_of_way, send
from msgrelay.accounts import get_accounts
from msgrelay.logs import log_context
from msgrelay.settings import get_settings
from tasks.app import app

log = get_task_logger(__name__)


def enqueue_chunks(chunks: Iterable[tuple[int, str]], *, call: str | None = None) -> None:
    """Publish one send_chunk per (chunk id, queue); ids only, never payloads or secrets (`call`: a verification
    call's right-of-way member, in a header the otp task ends it by)."""
    headers = {right_of_way.HEADER: call} if call else None
    with app.producer_or_acquire() as producer:  # one connection for the whole batch
        for chunk_id, queue in chunks:
            send_chunk.apply_async(args=[chunk_id], queue=queue, producer=producer, headers=headers)


@app.task(name="tasks.send_chunk", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def send_chunk(self, chunk_id: int) -> str:
    """Send one chunk at most once; a retry waits the countdown the policy chose (tries are counted in the
    chunk's row, so the task message carries nothing but the id)."""
    settings = get_settings()
    # a verification call has the right of way until its request leaves; any other send gives way to it
    way = right_of_way.way_of_send(self.request.get(right_of_way.HEADER),
                                   verification=(self.request.delivery_info or {}).get("routing_key") == Queue.OTP,
                                   max_wait_s=settings.right_of_way_s)
    with log_context(**chunk_log_fields(chunk_id)):
        try:
            outcome = send.send_chunk(chunk_id, settings=settings, accounts=get_accounts(), way=way)
        finally:
            way.clear()  # a call that sent nothing (skipped, held, refused) ends here
        log.info("chunk %s: %s %s", chunk_id, outcome.action, outcome.detail)
        if outcome.new_chunks:
            enqueue_chunks(outcome.new_chunks)
        if outcome.action == "retry":
            raise self.retry(args=[chunk_id], countdown=outcome.countdown, max_retries=None)
        return outcome.action


def chunk_log_fields(chunk_id: int) -> dict[str, Any]:
    """What the lines of a chunk's send carry: its job and account (a route's chunk: the account picked last);
    text logs show none of it, so only JSON logs pay the query."""
    if get_settings().log_format != "json":
        return {"chunk_id": chunk_id}
    try:
        with session_scope() as session:
            row = session.execute(select(Chunk.job_id, Chunk.account, Job.account).join(Job, Job.id == Chunk.job_id)
                                  .where(Chunk.id == chunk_id)).first()
    except SQLAlchemyError:  # the database does not answer: the send finds out and decides, not its log lines
        row = None
    if row is None:
        return {"chunk_id": chunk_id}
    return {"job_id": row[0], "chunk_id": chunk_id, "account": row[1] or row[2]}
