"""Producer routes: jobs (submit, status, messages, pause/resume/cancel) and their request and answer bodies."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, WrapValidator,
                      field_validator, model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ValidatorFunctionWrapHandler
from sqlalchemy import select
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api import access
from api.access import Principal
from api.inputs import Offset, RowId, StorableBody, answers, recipient_errors
from api.job_body import STREAM_ABOVE_BYTES, batch_checker, is_json, outline, parse_whole, recipients_of, validated
from models import Job, Message, session_scope
from msgrelay import jobs as joblife, operations
from msgrelay.accounts import get_accounts
from models.statuses import MessageStatus
from msgrelay.submit import submit_job
from msgrelay.upload import BATCH_ROWS, read_recipients, submit_stream
from msgrelay.webhooks.receivers import check_url
from models.webhooks import URL_MAX_CHARS
from providers.errors import InvalidInput

#: an option's value is at most this long: no provider option comes near it, and a digit string this short is
#: always a number Python converts (its limit is 4,300 digits)
OPTION_MAX_CHARS = 2_000
OPTION_NAME_MAX_CHARS = 64
NAME_MAX_CHARS = 128


def _short_option(value: Any) -> Any:
    """An option value's text is at most OPTION_MAX_CHARS characters."""
    if isinstance(value, str) and len(value) > OPTION_MAX_CHARS:
        raise ValueError(f"an option's value is at most {OPTION_MAX_CHARS} characters, got {len(value)}")
    return value


def _one_shape(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate recipients, naming a bad one's place without the union's member names."""
    try:
        return handler(value)
    except ValidationError as exc:
        raise recipient_errors(value, exc, object_tag="RecipientIn") from None


OptionValue = Annotated[Any, AfterValidator(_short_option)]
OptionName = Annotated[str, Field(min_length=1, max_length=OPTION_NAME_MAX_CHARS)]


class RecipientIn(BaseModel):
    """One recipient with its own content or custom id."""

    model_config = ConfigDict(extra="forbid")
    mobile: str
    content: str | None = None
    custom_id: str | None = Field(default=None, max_length=64)


class JobFields(StorableBody):
    """A job without its recipients: the `job` part of POST /v1/jobs/upload."""

    model_config = ConfigDict(extra="forbid")
    account: str | None = Field(default=None, max_length=NAME_MAX_CHARS, description="the account (or give `route`)")
    route: str | None = Field(default=None, max_length=NAME_MAX_CHARS, description=(
        "a route of accounts.toml instead of an account: chunks fail over (or split by weight) across its accounts"))
    kind: str = Field(max_length=NAME_MAX_CHARS)
    content: Any = None
    options: dict[OptionName, OptionValue] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)
    send_at: datetime | None = None
    valid_until: datetime | None = Field(default=None, description=(
        "aware time: a message not handed to the provider by then ends expired (NOT_SENT_IN_TIME), unsent"))
    callback_url: str | None = Field(default=None, max_length=URL_MAX_CHARS, description=(
        "http(s) URL that receives this job's signed status events (overrides MSGRELAY_WEBHOOK_URL)"))

    @model_validator(mode="before")
    @classmethod
    def _account_or_route(cls, data: Any) -> Any:
        """Exactly one of `account` and `route`: a missing one is named as `account`, two as `route`."""
        if isinstance(data, dict) and (data.get("account") is None) == (data.get("route") is None):
            both = data.get("account") is not None
            raise ValidationError.from_exception_data(cls.__name__, [InitErrorDetails(
                type=PydanticCustomError("missing" if not both else "value_error",
                                         "give an account or a route, not both" if both else
                                         "Field required: give an account (or a route)"),
                loc=("route" if both else "account",), input=None)])
        return data

    @field_validator("callback_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """An absolute http(s) URL with a host."""
        if value is None:
            return None
        try:
            return check_url("callback_url", value)
        except InvalidInput as exc:
            raise ValueError(exc.rule) from None

    @field_validator("send_at", "valid_until")
    @classmethod
    def _utc_in_range(cls, value: datetime | None) -> datetime | None:
        """An aware time that still exists once converted to UTC (years 1 to 9999)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2026-11-23T18:00:00+08:00")
        try:
            value.astimezone(timezone.utc)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC: it must fall within years 1 to 9999") from None
        return value


class JobIn(JobFields):
    """POST /v1/jobs."""

    recipients: Annotated[list[str | RecipientIn], WrapValidator(_one_shape)] = Field(min_length=1)


class JobCreated(BaseModel):
    """202 answer of POST /v1/jobs."""

    id: int
    recipients: int
    chunks: int
    created: bool = True
    duplicates_removed: int = 0


router = APIRouter(tags=["jobs"])
NO_SUCH_JOB = answers(s404="no such job", s403="the job is not of the key's accounts, or the key's role may not do this")
Caller = Annotated[Principal, Depends(access.current)]
Operator = Annotated[Principal, Depends(access.operator)]


def _job_of(session: Session, principal: Principal, job_id: int) -> Job:
    """The job (404 when there is none), or 403 when it is not the principal's (its account, or its route's
    accounts)."""
    job = joblife.get_job(session, job_id)
    if not access.can_see_job(principal, job.account, job.route):
        raise access.forbid(principal, f"job {job_id}: it is not of the key's accounts")
    return job


def enqueue(chunks, *, call: str | None = None) -> None:
    """Publish chunks to the workers (msgrelay.submit's Enqueue), loading the Celery app only when something is."""
    from tasks import enqueue_chunks
    enqueue_chunks(chunks, call=call)


#: the request body of POST /v1/jobs in OpenAPI: the route reads its body itself (`api.job_body`)
JOB_BODY_DOC = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/JobIn"}}}},
    "responses": {"422": {"description": "Validation Error", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}}}}
RECIPIENTS_LIST = TypeAdapter(Annotated[list[str | RecipientIn], WrapValidator(_one_shape)])


@router.post("/jobs", status_code=202, response_model=JobCreated, openapi_extra=JOB_BODY_DOC)
async def create_job(request: Request, principal: Caller) -> JobCreated:
    """Validate and accept a job (body: `JobIn`); the same idempotency_key returns the first job. A job of one
    batch or less goes the short way (`submit_job`: fewest statements, for verification calls); a bigger one is
    checked and written in batches (`submit_stream`), and a body over a megabyte is read as a stream, so a million
    recipients cost the API little more than the body's bytes."""
    raw = await request.body()
    content_type = request.headers.get("content-type")
    shape = outline(raw) if len(raw) > STREAM_ABOVE_BYTES and is_json(content_type) else None
    if shape is not None and shape[1] > BATCH_ROWS:
        fields, _ = shape
        body = validated(JobIn, {**fields, "recipients": ["0"]})  # every rule but the recipients' own
        recipients: Any = recipients_of(raw, batch_checker(RECIPIENTS_LIST))
        submit = submit_stream
    else:
        body = validated(JobIn, parse_whole(raw, content_type))
        recipients = [r if isinstance(r, str) else r.model_dump(exclude_none=True) for r in body.recipients]
        submit = submit_stream if len(recipients) > BATCH_ROWS else submit_job
    access.check_submit(principal, account=body.account, route=body.route)
    done = await run_in_threadpool(
        submit, accounts=get_accounts(), account=body.account, route=body.route, kind=body.kind, recipients=recipients,
        content=body.content, options=body.options, idempotency_key=body.idempotency_key, send_at=body.send_at,
        callback_url=body.callback_url, valid_until=body.valid_until, enqueue=enqueue,
    )
    return JobCreated(**vars(done))


@router.post("/jobs/upload", status_code=202, response_model=JobCreated)
async def upload_job(
    job: Annotated[str, Form(description="the job as JSON: account, kind, content?, options?, idempotency_key?, "
                                         "send_at?, valid_until?, callback_url? (the fields of POST /v1/jobs but "
                                         "recipients)")],
    recipients: Annotated[UploadFile, File(description="one recipient per line: CSV `mobile[,content[,custom_id]]` "
                                                       "(a first line `mobile,content,custom_id` names the columns), "
                                                       "or NDJSON (a name ending .ndjson or .jsonl, or type "
                                                       "application/x-ndjson): a mobile string or an object")],
    principal: Caller,
) -> JobCreated:
    """Accept a job of any size: its recipients are read from the file and written to the database in batches, in
    constant memory, in one transaction; 422 names the field (`job.…`) or the recipient (`recipients[i]…`)."""
    try:
        fields = JobFields.model_validate_json(job)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", "job", *e["loc"])} for e in exc.errors()]) from None
    access.check_submit(principal, account=fields.account, route=fields.route)
    name = (recipients.filename or "").lower()
    ndjson = name.endswith((".ndjson", ".jsonl")) or (recipients.content_type or "").endswith(("ndjson", "jsonl"))
    done = await run_in_threadpool(
        submit_stream, accounts=get_accounts(), account=fields.account, route=fields.route, kind=fields.kind,
        recipients=read_recipients(recipients.file, ndjson=ndjson), content=fields.content, options=fields.options,
        idempotency_key=fields.idempotency_key, send_at=fields.send_at, callback_url=fields.callback_url,
        valid_until=fields.valid_until, enqueue=enqueue)
    return JobCreated(**vars(done))


@router.get("/jobs")
def list_jobs(principal: Caller, limit: int = Query(50, ge=1, le=1000), offset: Offset = 0) -> list[dict]:
    """Newest jobs first, with their counts (of the key's accounts only)."""
    with session_scope() as session:
        jobs = session.scalars(select(Job).where(access.jobs_visible(principal)).order_by(Job.id.desc())
                               .limit(limit).offset(offset)).all()
        return [view.as_dict() for view in joblife.view_jobs(session, list(jobs))]


@router.get("/jobs/{job_id}", responses=NO_SUCH_JOB)
def get_job(job_id: RowId, principal: Caller) -> dict:
    """One job's status and counts per message status."""
    with session_scope() as session:
        _job_of(session, principal, job_id)
        return joblife.view_job(session, job_id).as_dict()


@router.get("/jobs/{job_id}/messages", responses=NO_SUCH_JOB)
def job_messages(job_id: RowId, principal: Caller, status: MessageStatus | None = None,
                 provider_state: Annotated[str | None, Query(max_length=64, pattern=r"^[\w.:-]+$", description=(
                     "only messages in this provider state, e.g. SUPPRESSED, FREQUENCY_CAP, NOT_SENT_IN_TIME"))] = None,
                 limit: int = Query(100, ge=1, le=10_000), offset: Offset = 0) -> list[dict]:
    """A job's messages, optionally of one status and one provider state, in recipient order."""
    with session_scope() as session:
        job = _job_of(session, principal, job_id)
        query = select(Message).where(Message.job_id == job_id)
        if status is not None:
            query = query.where(Message.status == status)
        if provider_state is not None:
            query = query.where(Message.provider_state == provider_state)
        rows = session.scalars(query.order_by(Message.seq).limit(limit).offset(offset))
        return [{
            "mobile": m.mobile, "custom_id": m.custom_id, "provider_msg_id": m.provider_msg_id, "status": m.status,
            "provider_state": m.provider_state, "provider_desc": m.provider_desc,
            "submitted_at": m.submitted_at.isoformat() if m.submitted_at else None,
            "reported_at": m.reported_at.isoformat() if m.reported_at else None, "content": m.content,
            "account": m.account or (job.account if job.route is None else None),
        } for m in rows]


@router.post("/jobs/{job_id}/pause", responses=NO_SUCH_JOB)
def pause(job_id: RowId, principal: Operator) -> dict:
    """Stop sending (chunks in flight finish); resume sends the rest."""
    return _act(principal, job_id, lambda: operations.pause_job(job_id, by=principal.name))


@router.post("/jobs/{job_id}/resume", responses=NO_SUCH_JOB)
def resume(job_id: RowId, principal: Operator) -> dict:
    """Resume a paused job."""
    return _act(principal, job_id, lambda: operations.resume_job(job_id, by=principal.name, enqueue=enqueue))


@router.post("/jobs/{job_id}/cancel", responses=NO_SUCH_JOB)
def cancel(job_id: RowId, principal: Operator) -> dict:
    """Cancel: unsent messages become rejected (cancelled)."""
    return _act(principal, job_id, lambda: operations.cancel_job(job_id, by=principal.name))


def _act(principal: Principal, job_id: int, action) -> dict:
    """Run an operator action on a job the principal may see (404 otherwise), then answer the job's view."""
    with session_scope() as session:
        _job_of(session, principal, job_id)  # a job's account and route never change: checked, then acted on
    action()
    with session_scope() as session:
        return joblife.view_job(session, job_id).as_dict()
