"""send_chunk as a plain function: claim the chunk, send it once, record what the provider said.

The compare-and-set `pending → sending` makes a redelivered task a no-op and counts the try in the chunk's
row; every outcome is written to the database before the Celery task retries. What each error leads to is
``msgrelay.retry``'s decision; this module only carries it out.
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import insert, select, update
from sqlmodel import Session

from models import Chunk, Job, Message, session_scope, utcnow
from models.bulk import set_messages_status, update_messages_by_id
from msgrelay.accounts import Account
from msgrelay.balances import known_balance
from msgrelay.jobs import finalize_jobs, pause_job
from models.statuses import ChunkStatus, JobStatus, MessageStatus, PauseReason
from msgrelay.limits import take_token
from msgrelay.retry import Action, decide, rate_limit_wait_s, split
from msgrelay.settings import Settings
from providers.base import Provider, Recipient, SendSpec
from providers.errors import AccountError, ProviderError
from providers.http import http_send
from providers.registry import get_provider


@dataclass(frozen=True)
class Outcome:
    """What happened to one call: `action` is done | skipped | retry | split; `countdown` for retry."""

    action: str
    countdown: float = 0.0
    detail: str = ""
    new_chunks: tuple[tuple[int, str], ...] = ()


def send_chunk(chunk_id: int, *, settings: Settings, accounts: Mapping[str, Account]) -> Outcome:
    """Send one chunk at most once; return what the task should do next."""
    with session_scope() as session:
        row = session.execute(
            select(Chunk, Job).join(Job, Job.id == Chunk.job_id).where(Chunk.id == chunk_id)
        ).first()
        if row is None:
            return Outcome("skipped", detail="no such chunk")
        chunk, job = row
        if chunk.status != ChunkStatus.PENDING or job.status != JobStatus.RUNNING:
            return Outcome("skipped", detail=f"chunk {chunk.status}, job {job.status}")
    account = accounts.get(job.account)
    provider = get_provider(job.provider)
    if account is None or provider is None:
        with session_scope() as session:
            pause_job(session, job.id, f"{PauseReason.CREDENTIALS}: account {job.account!r} is not configured")
        return Outcome("done", detail="account missing")

    if account.balance_per_recipient:
        known = known_balance(account, max_age_s=settings.balance_fresh_s)
        needed = Decimal(str(account.balance_per_recipient)) * (chunk.hi - chunk.lo)
        if known is not None and known < needed:
            with session_scope() as session:
                pause_job(session, job.id,
                          f"{PauseReason.BALANCE}: last known balance {known} < {needed} needed for the next chunk")
            return Outcome("done", detail="job paused: balance too low")

    if account.rate_limit:
        wait = take_token(job.account, account.rate_limit)
        if wait > 0:
            # the wait moves the chunk's due time, so the sweeper does not start a second chain meanwhile
            wait = rate_limit_wait_s(wait, settings)
            with session_scope() as session:
                session.execute(update(Chunk).where(Chunk.id == chunk_id, Chunk.status == ChunkStatus.PENDING)
                                .values(next_attempt_at=utcnow() + timedelta(seconds=wait)))
            return Outcome("retry", countdown=wait, detail="rate limit")

    now = utcnow()
    with session_scope() as session:
        attempts = session.scalar(
            update(Chunk)
            .where(Chunk.id == chunk_id, Chunk.status == ChunkStatus.PENDING)
            .values(status=ChunkStatus.SENDING, attempts=Chunk.attempts + 1, updated_at=now)
            .returning(Chunk.attempts)
        )
        if attempts is None:
            return Outcome("skipped", detail="claimed by another worker")
        request_id = chunk.request_id
        if provider.idempotent_request_id and request_id is None:
            # One id for the chunk's whole life, committed before the first try: every retry reuses it.
            request_id = uuid.uuid4().hex
            session.execute(update(Chunk).where(Chunk.id == chunk_id).values(request_id=request_id))
        batch = [
            Recipient(mobile=m, custom_id=c, content=t)
            for m, c, t in session.execute(
                select(Message.mobile, Message.custom_id, Message.content)
                .where(Message.job_id == job.id, Message.seq >= chunk.lo, Message.seq < chunk.hi,
                       Message.status == MessageStatus.QUEUED)
                .order_by(Message.seq)
            )
        ]
    if not batch:
        with session_scope() as session:
            _set_chunk(session, chunk_id, ChunkStatus.SENT)
        return Outcome("done", detail="nothing left to send")

    spec = SendSpec(kind=job.kind, content=job.content, options=job.options, send_at=job.send_at)
    try:
        request = provider.build_send(account, spec, batch, now, request_id=request_id)
        response = http_send(account.base_url, request, read_timeout_s=settings.http_read_timeout_s)
        accepted = provider.parse_send(spec, batch, response)
    except ProviderError as exc:
        return _on_error(exc, chunk, job, batch, provider, attempts, settings)

    with session_scope() as session:
        by_custom = {a.custom_id: a for a in accepted if a.custom_id}
        by_mobile = {a.mobile: a for a in accepted}
        ids = dict(session.execute(
            select(Message.custom_id, Message.id).where(Message.custom_id.in_([r.custom_id for r in batch]))
        ).all())
        sent_at = utcnow()
        changes = []
        for r in batch:
            got = by_custom.get(r.custom_id) or by_mobile.get(r.mobile)
            changes.append({
                "id": ids[r.custom_id], "status": MessageStatus.SUBMITTED if got else MessageStatus.UNKNOWN,
                "provider_msg_id": got.provider_msg_id if got else None, "submitted_at": sent_at,
                "updated_at": sent_at,
            })
        update_messages_by_id(session, changes)
        task_id = next((a.task_id for a in accepted if a.task_id), None)
        _set_chunk(session, chunk_id, ChunkStatus.SENT, **({"provider_task_id": task_id} if task_id else {}))
    return Outcome("done", detail=f"{len(accepted)} of {len(batch)} accepted")


def _set_chunk(session: Session, chunk_id: int, status: str, **values) -> None:
    session.execute(update(Chunk).where(Chunk.id == chunk_id).values(status=status, updated_at=utcnow(), **values))


def _close_messages(session: Session, chunk: Chunk, status: str, exc: ProviderError, *, sent: bool = False) -> None:
    """Give the chunk's still-queued messages a final (or unknown) status with the provider's code."""
    now = utcnow()
    values = {"status": status, "provider_state": exc.code[:64], "provider_desc": exc.message[:255] or None,
              "updated_at": now}
    if sent:
        values["submitted_at"] = now
    set_messages_status(session, job_id=chunk.job_id, lo=chunk.lo, hi=chunk.hi,
                        from_statuses=[MessageStatus.QUEUED], **values)


def _on_error(exc: ProviderError, chunk: Chunk, job: Job, batch: list[Recipient], provider: Provider,
              attempts: int, settings: Settings) -> Outcome:
    """Carry out the retry policy's decision for `exc` in the database; tell the task whether to retry."""
    decision = decide(exc, attempts=attempts, batch_size=len(batch),
                      idempotent_request_id=provider.idempotent_request_id, settings=settings)
    err = {"error_code": exc.code[:64], "error_desc": exc.message[:255] or None}
    with session_scope() as session:
        if decision.action is Action.PAUSE:
            reason = exc.reason if isinstance(exc, AccountError) else PauseReason.CREDENTIALS
            _set_chunk(session, chunk.id, ChunkStatus.PENDING, **err)
            pause_job(session, job.id, f"{reason}: {exc.code}")
            return Outcome("done", detail=f"job paused: {exc.code}")
        if decision.action is Action.UNKNOWN:
            _set_chunk(session, chunk.id, ChunkStatus.UNKNOWN, **err)
            _close_messages(session, chunk, MessageStatus.UNKNOWN, exc, sent=True)
            return Outcome("done", detail="ambiguous: left to reports")
        if decision.action is Action.SPLIT:
            halves = _split(session, chunk)
            _set_chunk(session, chunk.id, ChunkStatus.SPLIT, **err)
            queue = provider.queue_for(job.kind, job.total)
            return Outcome("split", new_chunks=tuple((cid, queue) for cid in halves), detail=exc.code)
        if decision.action is Action.RETRY:
            due = utcnow() + timedelta(seconds=decision.countdown_s)
            # Back to pending first: if publishing the retry fails, the sweeper re-enqueues it.
            _set_chunk(session, chunk.id, ChunkStatus.PENDING, next_attempt_at=due, **err)
            return Outcome("retry", countdown=decision.countdown_s, detail=exc.code)
        rejected = decision.action is Action.REJECT
        _set_chunk(session, chunk.id, ChunkStatus.REJECTED if rejected else ChunkStatus.FAILED, **err)
        _close_messages(session, chunk, MessageStatus.REJECTED if rejected else MessageStatus.FAILED, exc)
        finalize_jobs(session, [job.id])
        return Outcome("done", detail=f"rejected: {exc.code}" if rejected else
                       f"gave up after {attempts} attempts: {exc.code}")


def _split(session: Session, chunk: Chunk) -> list[int]:
    """Two pending halves of a chunk refused for a bad number (``retry.split``); returns their ids."""
    now = utcnow()
    rows = [{"job_id": chunk.job_id, "parent_id": chunk.id, "lo": lo, "hi": hi, "status": ChunkStatus.PENDING,
             "next_attempt_at": now, "updated_at": now} for lo, hi in split(chunk.lo, chunk.hi)]
    return list(session.scalars(insert(Chunk).returning(Chunk.id, sort_by_parameter_order=True), rows))
