"""A job's progress over time: the sweeper notes each running job's counters when they moved (`snapshot`), and
the console draws them (`series`). Counters only: never a scan of the messages, whatever the job's size."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session

from models import Job, JobProgress, utcnow
from models.counts import counts_by_job
from models.statuses import JobStatus, MessageStatus

#: at most this many running jobs are noted per sweep (the oldest first)
SNAPSHOT_JOBS = 500
#: a chart has at most this many points (more snapshots are thinned evenly, first and last kept)
MAX_POINTS = 240


def snapshot(session: Session, now: datetime | None = None) -> int:
    """Note the counts of every running or paused job whose counters moved since its last note; returns how many."""
    now = now or utcnow()
    ids = list(session.scalars(select(Job.id).where(Job.status.in_([JobStatus.RUNNING, JobStatus.PAUSED]))
                               .order_by(Job.id).limit(SNAPSHOT_JOBS)))
    if not ids:
        return 0
    last_ids = select(func.max(JobProgress.id)).where(JobProgress.job_id.in_(ids)).group_by(JobProgress.job_id)
    last = {p.job_id: p.counts for p in session.scalars(select(JobProgress).where(JobProgress.id.in_(last_ids)))}
    noted = 0
    for job_id, counts in counts_by_job(session, ids).items():
        if counts != last.get(job_id, zeroes()):
            session.add(JobProgress(job_id=job_id, at=now, counts=counts))
            noted += 1
    return noted


def zeroes() -> dict[str, int]:
    """Every message status at zero."""
    return {s.value: 0 for s in MessageStatus}


def series(session: Session, job: Job, counts: dict[str, int], now: datetime | None = None) -> list[tuple[datetime, dict[str, int]]]:
    """The job's counts over time: nothing at its creation, each note, and `counts` (its counters now) at its end
    (or now while it runs); thinned to MAX_POINTS."""
    notes = [(p.at, p.counts) for p in session.scalars(
        select(JobProgress).where(JobProgress.job_id == job.id).order_by(JobProgress.id))]
    if len(notes) > MAX_POINTS - 2:
        step = len(notes) / (MAX_POINTS - 2)
        notes = [notes[int(i * step)] for i in range(MAX_POINTS - 2)]
    end = job.finished_at or now or utcnow()
    points = [(job.created_at, zeroes()), *notes, (max(end, notes[-1][0] if notes else job.created_at), counts)]
    return points
