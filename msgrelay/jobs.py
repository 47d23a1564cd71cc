"""Job lifecycle: counts, pause/resume/cancel and the move to `done` when every message is final.

Counts come from the per-job counters (`models.counts`, kept by database triggers), never from a scan of the
job's messages: a million-recipient job answers as fast as a small one.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import exists, func, select, update
from sqlmodel import Session

from models import Chunk, Job, Message, utcnow
from models.counts import counts_by_job, job_counts
from models.statuses import (
    OPEN_MESSAGE_STATUSES, ChunkStatus, HeldBack, JobStatus, MessageStatus, PauseReason, Queue,
)
from msgrelay.accounts import get_accounts, routes_of
from msgrelay.routes import health
from providers.errors import InvalidInput, NotFound
from providers.registry import get_provider


OPEN_STATUSES = list(OPEN_MESSAGE_STATUSES)


@dataclass(frozen=True)
class JobView:
    """A job as the API and CLI show it."""

    id: int
    account: str
    kind: str
    status: str
    reason: str | None
    total: int
    counts: dict[str, int]
    chunks: int
    created_at: str
    route: str | None = None
    chunks_by_account: dict[str, int] | None = None  # where its chunks went (a route job's are spread)
    waiting: str | None = None  # what a running job waits for ("send window opens 08:00")
    waiting_until: str | None = None
    valid_until: str | None = None
    held_back: dict[str, int] | None = None  # recipients policy kept from the provider, by reason

    def as_dict(self) -> dict:
        """The JSON shape of GET /v1/jobs/{id}."""
        return {"id": self.id, "account": self.account, "kind": self.kind, "status": self.status,
                "reason": self.reason, "total": self.total, "counts": self.counts, "chunks": self.chunks,
                "created_at": self.created_at, "route": self.route, "chunks_by_account": self.chunks_by_account,
                "waiting": self.waiting, "waiting_until": self.waiting_until,
                "valid_until": self.valid_until, "held_back": self.held_back}


def message_counts(session: Session, job_id: int) -> dict[str, int]:
    """Messages of a job per status (every status present, zero when none), from its counters."""
    return job_counts(session, job_id)


def get_job(session: Session, job_id: int) -> Job:
    """The job, or InvalidInput naming `id`."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound("id", f"no job {job_id}")
    return job


def view_job(session: Session, job_id: int) -> JobView:
    """Status and counts of one job."""
    return view_jobs(session, [get_job(session, job_id)])[0]


def view_jobs(session: Session, jobs: list[Job]) -> list[JobView]:
    """Status and counts of jobs, their counters read in one query (a list of 50 costs two queries, not 100)."""
    counts = counts_by_job(session, [job.id for job in jobs])
    return [_view(session, job, counts[job.id]) for job in jobs]


def _view(session: Session, job: Job, counts: dict[str, int]) -> JobView:
    """A job as the API shows it, with its counts."""
    waits = job.status == JobStatus.RUNNING and job.waiting_until is not None
    return JobView(job.id, job.account, job.kind, job.status, job.reason, job.total, counts, job.chunks,
                   job.created_at.isoformat(), route=job.route, chunks_by_account=chunks_by_account(session, job),
                   waiting=job.waiting if waits else None,
                   waiting_until=job.waiting_until.isoformat() if waits else None,
                   valid_until=job.valid_until.isoformat() if job.valid_until else None,
                   held_back={HeldBack.SUPPRESSED.value: job.suppressed, HeldBack.FREQUENCY_CAP.value: job.capped,
                              HeldBack.NOT_SENT_IN_TIME.value: job.not_sent_in_time})


def chunks_by_account(session: Session, job: Job) -> dict[str, int]:
    """The job's requests per account (a split chunk counts as its halves); a route job's chunks not yet given
    an account are listed under "" (unassigned)."""
    if job.route is None:
        return {job.account: job.chunks}
    return {account or "": n for account, n in session.execute(
        select(Chunk.account, func.count()).where(Chunk.job_id == job.id, Chunk.status != ChunkStatus.SPLIT)
        .group_by(Chunk.account))}


def finalize_jobs(session: Session, job_ids: Iterable[int]) -> list[int]:
    """Mark `done` each running job whose messages are all final; returns those marked."""
    done = []
    # the counters are written by the same transactions as the messages, so they see what a scan would see
    for job_id, counts in counts_by_job(session, set(job_ids)).items():
        if not sum(counts[s] for s in OPEN_STATUSES):
            now = utcnow()
            changed = session.execute(
                update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                .values(status=JobStatus.DONE, reason=None, finished_at=now, updated_at=now)
            ).rowcount
            if changed:
                done.append(job_id)
    return done


def pause_job(session: Session, job_id: int, reason: str) -> bool:
    """Pause a queued or running job with a reason (balance, credentials, operator)."""
    return bool(session.execute(
        update(Job).where(Job.id == job_id, Job.status.in_([JobStatus.RUNNING, JobStatus.QUEUED]))
        .values(status=JobStatus.PAUSED, reason=reason[:255], updated_at=utcnow())
    ).rowcount)


def resume_job(session: Session, job_id: int) -> list[tuple[int, str]]:
    """Resume a paused job; returns its pending chunks (id, queue) to enqueue after commit."""
    job = get_job(session, job_id)
    if job.status != JobStatus.PAUSED:
        raise InvalidInput("status", f"only a paused job can be resumed; job {job_id} is {job.status}")
    now = utcnow()
    provider = get_provider(job.provider)
    due = job.send_at is None or job.send_at <= now or bool(provider and provider.native_schedule)
    job.status, job.reason, job.updated_at = (JobStatus.RUNNING if due else JobStatus.QUEUED), None, now
    job.waiting, job.waiting_until = None, None  # a window still closed holds its chunks again, and says so
    session.add(job)
    # the operator says its accounts are fixed: routes may send through them again
    route = routes_of(get_accounts()).get(job.route) if job.route else None
    health.clear(session, route.accounts if route else [job.account])
    if not due:
        return []
    session.execute(update(Chunk).where(Chunk.job_id == job_id, Chunk.status == ChunkStatus.PENDING)
                    .values(next_attempt_at=now, updated_at=now))
    return pending_chunks(session, job)


def pending_chunks(session: Session, job: Job) -> list[tuple[int, str]]:
    """(chunk id, queue) of a job's pending chunks."""
    provider = get_provider(job.provider)
    queue = provider.queue_for(job.kind, job.total) if provider and job.kind in provider.kinds else Queue.BULK
    ids = session.scalars(select(Chunk.id).where(Chunk.job_id == job.id, Chunk.status == ChunkStatus.PENDING))
    return [(cid, queue) for cid in ids]


def cancel_job(session: Session, job_id: int) -> int:
    """Cancel a job: nothing more is sent. The messages of its pending chunks become `rejected` (cancelled);
    a chunk in flight is left to settle as sent (its provider may already have it). Returns how many."""
    job = get_job(session, job_id)
    if job.status in (JobStatus.DONE, JobStatus.CANCELLED):
        raise InvalidInput("status", f"job {job_id} is already {job.status}")
    now = utcnow()
    job.status, job.reason, job.updated_at, job.finished_at = JobStatus.CANCELLED, PauseReason.OPERATOR, now, now
    session.add(job)
    # the compare-and-set on `pending` is what a worker's claim does too: a chunk is either claimed or cancelled
    session.execute(update(Chunk).where(Chunk.job_id == job_id, Chunk.status == ChunkStatus.PENDING)
                    .values(status=ChunkStatus.CANCELLED, updated_at=now))
    in_cancelled_chunk = exists().where(Chunk.job_id == Message.job_id, Chunk.status == ChunkStatus.CANCELLED,
                                        Message.seq >= Chunk.lo, Message.seq < Chunk.hi)
    return session.execute(
        update(Message).where(Message.job_id == job_id, Message.status == MessageStatus.QUEUED, in_cancelled_chunk)
        .values(status=MessageStatus.REJECTED, provider_desc="cancelled by operator", updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
