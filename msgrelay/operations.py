"""Operator actions on jobs and webhook deliveries, each written with its audit row in one transaction: the one
home the API, the console and the CLI call (`by`: the key's name, or `cli`). Suppression changes and account
resumes audit the same way in their own modules (`policy.suppressions`, `routes.view`)."""
from __future__ import annotations

from sqlalchemy import ColumnElement

from models import session_scope
from models.statuses import PauseReason
from msgrelay import audit, jobs as joblife
from msgrelay.submit import Enqueue
from msgrelay.webhooks import operations as deliveries
from providers.errors import InvalidInput


def pause_job(job_id: int, *, by: str) -> None:
    """Pause a queued or running job (chunks in flight finish); InvalidInput naming `status` otherwise."""
    with session_scope() as session:
        job = joblife.get_job(session, job_id)
        if not joblife.pause_job(session, job_id, PauseReason.OPERATOR):
            raise InvalidInput("status", f"only a queued or running job can be paused; job {job_id} is {job.status}")
        audit.record(session, by, audit.Action.JOB_PAUSE, f"job:{job_id}")


def resume_job(job_id: int, *, by: str, enqueue: Enqueue) -> None:
    """Resume a paused job and publish its pending chunks once that is committed."""
    with session_scope() as session:
        chunks = joblife.resume_job(session, job_id)
        audit.record(session, by, audit.Action.JOB_RESUME, f"job:{job_id}")
    if chunks:
        enqueue(chunks)


def cancel_job(job_id: int, *, by: str) -> int:
    """Cancel a job: its unsent messages become rejected; returns how many."""
    with session_scope() as session:
        cancelled = joblife.cancel_job(session, job_id)
        audit.record(session, by, audit.Action.JOB_CANCEL, f"job:{job_id}", f"{cancelled} unsent messages rejected")
    return cancelled


def retry_delivery(delivery_id: int, *, by: str, jobs: ColumnElement[bool] | None = None) -> dict:
    """Send a dead or failing webhook delivery again now (same events, fresh schedule); `jobs`: only a delivery
    to a receiver of the jobs it selects (a key's own)."""
    with session_scope() as session:
        retried = deliveries.retry_delivery(session, delivery_id, jobs=jobs)
        audit.record(session, by, audit.Action.DELIVERY_RETRY, f"delivery:{delivery_id}")
        return retried
