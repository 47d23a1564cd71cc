"""What policy holds back, and where: send windows (a job waits, chunks stay pending in the database), validity
(unsent messages expire without a provider call), and the screen every chunk passes right before it is sent
(suppression list, then frequency caps)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import exists, select, update
from sqlmodel import Session

from models import Chunk, Job, Message
from models.db import skip_locked
from models.bulk import set_messages_status, update_by_id
from models.statuses import ChunkStatus, HeldBack, JobStatus, MessageStatus
from msgrelay.accounts import Account
from msgrelay import metrics
from msgrelay.policy import caps
from msgrelay.policy.suppressions import added_since
from providers.base import AccountBase, Recipient
from providers.sending_rules import (
    UNHELD_KINDS,
    UNSUPPRESSED_KINDS,
    Hold,
    mobile_key,
    window_hold,
)

NOT_SENT_DESC = "valid_until passed before it was sent"
#: a suppression committed while its job was being submitted may have been missed there, so the chunks look back
#: this far before the job's creation (a suppression is one short INSERT: its time and its commit are
#: milliseconds apart); a list imported just before a job is probed in full instead (`added_since`)
SUBMIT_OVERLAP = timedelta(seconds=10)
#: the job column that counts each reason
HELD_COLUMN = {HeldBack.SUPPRESSED: "suppressed", HeldBack.FREQUENCY_CAP: "capped",
               HeldBack.NOT_SENT_IN_TIME: "not_sent_in_time"}


def window_hold_of(account: AccountBase, kind: str, total: int, now: datetime) -> Hold | None:
    """What the account's send window for this kind says at `now`: None (send), or until when to wait.
    A verification call and a one-recipient `ims` are never held."""
    if kind in UNHELD_KINDS or (kind == "ims" and total == 1):
        return None
    return window_hold(account.window_for(kind), account.tz(), now)


def wait_for_window(session: Session, job_id: int, hold: Hold, chunk_id: int | None = None) -> None:
    """Show the wait on the job, and make the chunk (or every pending chunk) due when the window opens."""
    session.execute(update(Job).where(Job.id == job_id, Job.waiting_until.is_distinct_from(hold.until))
                    .values(waiting=hold.waiting, waiting_until=hold.until))
    chunks = update(Chunk).where(Chunk.job_id == job_id, Chunk.status == ChunkStatus.PENDING)
    if chunk_id is not None:
        chunks = chunks.where(Chunk.id == chunk_id)
    session.execute(chunks.values(next_attempt_at=hold.until))


def count_held(session: Session, job_id: int, reason: HeldBack, n: int) -> None:
    """Add `n` to the job's count of recipients held back for `reason`."""
    if n:
        column = getattr(Job, HELD_COLUMN[reason])
        session.execute(update(Job).where(Job.id == job_id).values({column: column + n}))


def screen(session: Session, account: AccountBase, job: Job, batch: Sequence[Recipient], ids: Mapping[str, int], *,
           count_caps: bool, now: datetime, scopes: Sequence[str] = ()) -> list[Recipient]:
    """The recipients of a claimed chunk that may be sent: the suppressed and the over-cap ones are `rejected`
    here (SUPPRESSED, FREQUENCY_CAP) and counted on the job. Caps are counted only when `count_caps` (the
    chunk's first claim), so a retry never counts a recipient twice. `scopes`: the accounts whose suppression
    lists hold (a route's accounts; default the account's own)."""
    keys = [mobile_key(r.mobile) for r in batch]
    refused: dict[str, tuple[HeldBack, str]] = {}
    if job.kind not in UNSUPPRESSED_KINDS:  # checked at submit: only what was listed since can hit
        hit = added_since(session, scopes or [account.name], keys, job.created_at - SUBMIT_OVERLAP)
        refused.update({r.custom_id: (HeldBack.SUPPRESSED, "on the suppression list")
                        for r, key in zip(batch, keys) if key in hit})
    account_caps = account.caps()
    if count_caps and account_caps:
        rest = [(r, key) for r, key in zip(batch, keys) if r.custom_id not in refused]
        allowed = caps.take(session, account, [key for _, key in rest], now)
        limits = ", ".join(str(c) for c in account_caps)
        refused.update({r.custom_id: (HeldBack.FREQUENCY_CAP, f"frequency cap {limits} reached")
                        for (r, _), ok in zip(rest, allowed) if not ok})
    if not refused:
        return list(batch)
    update_by_id(session, Message, [{"id": ids[cid], "status": MessageStatus.REJECTED, "provider_state": reason.value,
                                     "provider_desc": desc, "updated_at": now} for cid, (reason, desc) in refused.items()])
    for reason in HeldBack:
        count_held(session, job.id, reason, sum(1 for r, _ in refused.values() if r is reason))
    metrics.recipients(account.name, job.kind, MessageStatus.REJECTED, len(refused))
    return [r for r in batch if r.custom_id not in refused]


def expire_unsent(session: Session, job_id: int, now: datetime, *, chunk_id: int | None = None) -> int:
    """The job's pending chunks (or one of them) become `expired` and their queued messages `expired` with
    NOT_SENT_IN_TIME, no provider call; returns how many messages. A chunk being sent is left to its send."""
    chunks = update(Chunk).where(Chunk.job_id == job_id, Chunk.status == ChunkStatus.PENDING)
    if chunk_id is not None:
        chunks = chunks.where(Chunk.id == chunk_id)
    ranges = session.execute(chunks.values(status=ChunkStatus.EXPIRED, error_code=HeldBack.NOT_SENT_IN_TIME.value,
                                           updated_at=now, closed_at=now).returning(Chunk.lo, Chunk.hi)).all()
    values = {"status": MessageStatus.EXPIRED, "provider_state": HeldBack.NOT_SENT_IN_TIME.value,
              "provider_desc": NOT_SENT_DESC, "updated_at": now}
    if len(ranges) <= 4:
        n = sum(set_messages_status(session, job_id=job_id, lo=lo, hi=hi, from_statuses=[MessageStatus.QUEUED],
                                    **values) for lo, hi in ranges)
    else:  # a whole job: one statement over the messages of its expired chunks
        in_expired = exists().where(Chunk.job_id == Message.job_id, Chunk.status == ChunkStatus.EXPIRED,
                                    Message.seq >= Chunk.lo, Message.seq < Chunk.hi)
        n = session.execute(update(Message).where(Message.job_id == job_id, Message.status == MessageStatus.QUEUED,
                                                  in_expired).values(**values)
                            .execution_options(synchronize_session=False)).rowcount
    count_held(session, job_id, HeldBack.NOT_SENT_IN_TIME, n)
    return n



def expire_late_jobs(session: Session, now: datetime, limit: int = 50) -> tuple[list[int], int]:
    """Expire what is still unsent of every job whose valid_until has passed (queued, running or paused: a
    window or a pause held it); returns the jobs touched and the messages expired."""
    jobs = list(session.scalars(skip_locked(session, select(Job.id).where(
        Job.valid_until <= now, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED]),
        exists().where(Chunk.job_id == Job.id, Chunk.status == ChunkStatus.PENDING)).limit(limit))))
    return jobs, sum(expire_unsent(session, job_id, now) for job_id in jobs)


def release_windows(session: Session, accounts: Mapping[str, Account], now: datetime) -> list[Job]:
    """Running jobs whose send window has opened (read from the accounts as they are now, so a changed window
    counts): their wait is cleared and their pending chunks are due now; returns those jobs. A job whose window
    moved gets its new opening."""
    released = []
    for job in session.scalars(skip_locked(session, select(Job).where(
            Job.waiting_until.is_not(None), Job.status == JobStatus.RUNNING).limit(100))):
        account = accounts.get(job.account)
        hold = window_hold_of(account, job.kind, job.total, now) if account is not None else None
        if hold is None:
            job.waiting, job.waiting_until = None, None
            session.execute(update(Chunk).where(Chunk.job_id == job.id, Chunk.status == ChunkStatus.PENDING)
                            .values(next_attempt_at=now))
            released.append(job)
        elif hold.until != job.waiting_until:
            wait_for_window(session, job.id, hold)
    return released
