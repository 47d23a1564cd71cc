"""The sweeper: release scheduled jobs, re-enqueue stale pending chunks, settle lost sends, expire silence, fold
the job counters' delta rows."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from models import Chunk, Job, Message, session_scope, utcnow
from models.db import skip_locked
from models.counts import compact, jobs_to_compact
from models.statuses import ChunkStatus, JobStatus, MessageStatus, Queue
from msgrelay.accounts import Account, get_accounts
from msgrelay.jobs import finalize_jobs, pending_chunks
from msgrelay.policy import caps, holds
from msgrelay.settings import Settings
from msgrelay import progress
from providers.registry import get_provider

BATCH = 1000
#: a chunk stuck in `sending` past `stale_sending_s`: its worker died between the claim and the answer
WORKER_LOST = "WORKER_LOST"
LOST_DESC = "worker lost during the request"
CLOSE_BATCH = 200  # chunks expired per sweep (each an UPDATE of at most one request's messages)
#: chunks whose messages may wait for reports; `pending`/`sending` ones are still being worked on
AFTER_SEND = [ChunkStatus.SENT, ChunkStatus.UNKNOWN, ChunkStatus.FAILED, ChunkStatus.REJECTED, ChunkStatus.SPLIT,
              ChunkStatus.CANCELLED]
#: a job's counter rows beyond which the sweep folds them (PostgreSQL appends one per statement and status)
COMPACT_ABOVE_ROWS = 64


@dataclass
class SweepResult:
    """What one sweep did, and the chunks to enqueue after its commit."""

    released_jobs: int = 0
    requeued: int = 0
    lost_sends: int = 0
    expired: int = 0
    finished_jobs: int = 0
    compacted_rows: int = 0
    released_windows: int = 0
    expired_unsent: int = 0
    pruned_counts: int = 0
    progress_noted: int = 0
    enqueue: list[tuple[int, str]] = field(default_factory=list)



def expire_silent_chunks(session: Session, deadline: datetime, now: datetime) -> tuple[set[int], int]:
    """Expire the submitted/unknown messages of chunks last touched before `deadline` (no report came in time)
    and close those chunks; returns the jobs touched and the messages expired. Works through the open chunks, not
    a status index on the messages: a report's UPDATE then touches no index (migration 0005)."""
    chunks = session.execute(skip_locked(session, select(Chunk.id, Chunk.job_id, Chunk.lo, Chunk.hi).where(
        Chunk.closed_at.is_(None), Chunk.status.in_(AFTER_SEND), Chunk.updated_at < deadline)
        .order_by(Chunk.updated_at).limit(CLOSE_BATCH))).all()
    jobs: set[int] = set()
    expired = 0
    silent = [MessageStatus.SUBMITTED, MessageStatus.UNKNOWN]
    for chunk in chunks:
        in_chunk = (Message.job_id == chunk.job_id, Message.seq >= chunk.lo, Message.seq < chunk.hi)
        n = session.execute(update(Message).where(*in_chunk, Message.status.in_(silent),
                                                  Message.submitted_at < deadline)
                            .values(status=MessageStatus.EXPIRED, updated_at=now)
                            .execution_options(synchronize_session=False)).rowcount
        if n:
            expired += n
            jobs.add(chunk.job_id)
        if session.scalar(select(Message.id).where(*in_chunk, Message.status.in_(silent)).limit(1)) is None:
            session.execute(update(Chunk).where(Chunk.id == chunk.id).values(closed_at=now))
    return jobs, expired


def sweep(settings: Settings, accounts: Mapping[str, Account] | None = None) -> SweepResult:
    """One pass; each step in its own short transaction."""
    result = SweepResult()
    now = utcnow()
    accounts = get_accounts() if accounts is None else accounts
    with session_scope() as session:  # jobs whose send window has opened (read from the accounts as they are now)
        for job in holds.release_windows(session, accounts, now):
            result.enqueue += pending_chunks(session, job)
            result.released_windows += 1
    with session_scope() as session:  # past valid_until: what is unsent expires, no provider call
        late, result.expired_unsent = holds.expire_late_jobs(session, now)
        finalize_jobs(session, late)
    with session_scope() as session:  # frequency counts of periods that are over
        result.pruned_counts = caps.prune(session, now)
    with session_scope() as session:  # scheduled jobs whose time has come
        for job in session.scalars(skip_locked(session, select(Job).where(
                Job.status == JobStatus.QUEUED, Job.send_at <= now).limit(100))):
            job.status, job.updated_at = JobStatus.RUNNING, now
            result.enqueue += pending_chunks(session, job)
            result.released_jobs += 1
    with session_scope() as session:  # pending chunks nobody is working on (lost publish, lost worker)
        stale = now - timedelta(seconds=settings.stale_pending_s)
        rows = session.execute(skip_locked(session, select(Chunk.id, Job.provider, Job.kind, Job.total)
                               .join(Job, Job.id == Chunk.job_id)
                               .where(Chunk.status == ChunkStatus.PENDING, Chunk.next_attempt_at < stale,
                                      Job.status == JobStatus.RUNNING).limit(BATCH))).all()
        if rows:
            session.execute(update(Chunk).where(Chunk.id.in_([r.id for r in rows])).values(next_attempt_at=now))
        for cid, provider_name, kind, total in rows:
            provider = get_provider(provider_name)
            result.enqueue.append((cid, provider.queue_for(kind, total) if provider else Queue.BULK))
        result.requeued = len(rows)
    with session_scope() as session:  # chunks stuck in `sending`: the worker died mid-request
        lost = now - timedelta(seconds=settings.stale_sending_s)
        rows = session.execute(skip_locked(session, select(Chunk, Job.provider, Job.kind, Job.total)
                               .join(Job, Job.id == Chunk.job_id)
                               .where(Chunk.status == ChunkStatus.SENDING, Chunk.updated_at < lost).limit(BATCH))).all()
        chunks = []
        for chunk, provider_name, kind, total in rows:
            provider = get_provider(provider_name)
            if provider is not None and provider.idempotent_request_id and chunk.request_id:
                # the provider drops a repeated request id: resending the same request is safe and recovers
                # the provider's task id (send_chunk checks the id is still inside the provider's window)
                chunk.status, chunk.updated_at, chunk.next_attempt_at = ChunkStatus.PENDING, now, now
                chunk.error_code, chunk.ambiguous_at = WORKER_LOST, chunk.ambiguous_at or now
                result.enqueue.append((chunk.id, provider.queue_for(kind, total)))
                result.requeued += 1
                continue
            chunks.append(chunk)
            # The provider may have it: never resend; reports settle it, or expiry does.
            chunk.status, chunk.updated_at, chunk.error_code = ChunkStatus.UNKNOWN, now, WORKER_LOST
            chunk.error_desc = LOST_DESC
            # the code as `provider_state`, as an ambiguous answer leaves it: `?provider_state=WORKER_LOST` lists them
            session.execute(update(Message).where(
                Message.job_id == chunk.job_id, Message.seq >= chunk.lo, Message.seq < chunk.hi,
                Message.status == MessageStatus.QUEUED,
            ).values(status=MessageStatus.UNKNOWN, submitted_at=now, updated_at=now, provider_state=WORKER_LOST,
                     provider_desc=LOST_DESC).execution_options(synchronize_session=False))
        result.lost_sends = len(chunks)
    with session_scope() as session:  # no report in time
        jobs, result.expired = expire_silent_chunks(session, now - timedelta(seconds=settings.report_expiry_s), now)
        running = set(session.scalars(select(Job.id).where(Job.status == JobStatus.RUNNING).limit(500)))
        result.finished_jobs = len(finalize_jobs(session, jobs | running))
    with session_scope() as session:  # the counts of running jobs that moved: the console's chart points
        result.progress_noted = progress.snapshot(session, now)
    with session_scope() as session:  # counters with many delta rows: fold them, so a count reads a few rows
        result.compacted_rows = compact(session, jobs_to_compact(session, above=COMPACT_ABOVE_ROWS))
    return result
