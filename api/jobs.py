"""Producer routes: jobs (submit, status, messages, pause/resume/cancel) and their request and answer bodies."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from models import Job, Message, session_scope
from msgrelay import jobs as joblife
from msgrelay.accounts import get_accounts
from models.statuses import MessageStatus, PauseReason
from msgrelay.submit import submit_job
from providers.errors import InvalidInput

class RecipientIn(BaseModel):
    """One recipient with its own content or custom id."""

    model_config = ConfigDict(extra="forbid")
    mobile: str
    content: str | None = None
    custom_id: str | None = Field(default=None, max_length=64)


class JobIn(BaseModel):
    """POST /v1/jobs."""

    model_config = ConfigDict(extra="forbid")
    account: str
    kind: str
    content: Any = None
    recipients: list[str | RecipientIn] = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, max_length=128)
    send_at: datetime | None = None


class JobCreated(BaseModel):
    """202 answer of POST /v1/jobs."""

    id: int
    recipients: int
    chunks: int
    created: bool = True
    duplicates_removed: int = 0


router = APIRouter(tags=["jobs"])


def _enqueue(chunks) -> None:
    from tasks import enqueue_chunks  # the Celery app is loaded only when something is published
    enqueue_chunks(chunks)


@router.post("/jobs", status_code=202, response_model=JobCreated)
async def create_job(body: JobIn) -> JobCreated:
    """Validate and accept a job; the same idempotency_key returns the first job."""
    recipients = [r if isinstance(r, str) else r.model_dump(exclude_none=True) for r in body.recipients]
    done = await run_in_threadpool(
        submit_job, accounts=get_accounts(), account=body.account, kind=body.kind, recipients=recipients,
        content=body.content, options=body.options, idempotency_key=body.idempotency_key, send_at=body.send_at,
        enqueue=_enqueue,
    )
    return JobCreated(**vars(done))


@router.get("/jobs")
def list_jobs(limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0)) -> list[dict]:
    """Newest jobs first, with their counts."""
    with session_scope() as session:
        ids = session.scalars(select(Job.id).order_by(Job.id.desc()).limit(limit).offset(offset)).all()
        return [joblife.view_job(session, i).as_dict() for i in ids]


@router.get("/jobs/{job_id}")
def get_job(job_id: int) -> dict:
    """One job's status and counts per message status."""
    with session_scope() as session:
        return joblife.view_job(session, job_id).as_dict()


@router.get("/jobs/{job_id}/messages")
def job_messages(job_id: int, status: MessageStatus | None = None, limit: int = Query(100, ge=1, le=10_000),
                 offset: int = Query(0, ge=0)) -> list[dict]:
    """A job's messages, optionally of one status, in recipient order."""
    with session_scope() as session:
        joblife.get_job(session, job_id)
        query = select(Message).where(Message.job_id == job_id)
        if status is not None:
            query = query.where(Message.status == status)
        rows = session.scalars(query.order_by(Message.seq).limit(limit).offset(offset))
        return [{
            "mobile": m.mobile, "custom_id": m.custom_id, "provider_msg_id": m.provider_msg_id, "status": m.status,
            "provider_state": m.provider_state, "provider_desc": m.provider_desc,
            "submitted_at": m.submitted_at.isoformat() if m.submitted_at else None,
            "reported_at": m.reported_at.isoformat() if m.reported_at else None, "content": m.content,
        } for m in rows]


@router.post("/jobs/{job_id}/pause")
def pause(job_id: int) -> dict:
    """Stop sending (chunks in flight finish); resume sends the rest."""
    with session_scope() as session:
        job = joblife.get_job(session, job_id)
        if not joblife.pause_job(session, job_id, PauseReason.OPERATOR):
            raise InvalidInput("status", f"only a queued or running job can be paused; job {job_id} is {job.status}")
    with session_scope() as session:
        return joblife.view_job(session, job_id).as_dict()


@router.post("/jobs/{job_id}/resume")
def resume(job_id: int) -> dict:
    """Resume a paused job."""
    with session_scope() as session:
        chunks = joblife.resume_job(session, job_id)
    _enqueue(chunks)
    with session_scope() as session:
        return joblife.view_job(session, job_id).as_dict()


@router.post("/jobs/{job_id}/cancel")
def cancel(job_id: int) -> dict:
    """Cancel: unsent messages become rejected (cancelled)."""
    with session_scope() as session:
        joblife.cancel_job(session, job_id)
    with session_scope() as session:
        return joblife.view_job(session, job_id).as_dict()
