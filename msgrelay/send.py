"""send_chunk as a plain function: claim the chunk, send it once, record what the provider said.

The compare-and-set `pending → sending` makes a redelivered task a no-op and counts the try in the chunk's
row; every outcome is written to the database before the Celery task retries. What each error leads to is
``msgrelay.retry``'s decision; this module only carries it out.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import Session

from models import Chunk, Job, session_scope, utcnow
from models.bulk import claim_with_batch, record_send_results, set_messages_status, update_chunk
from msgrelay.accounts import Account, routes_of
from msgrelay.balances import known_balance
from msgrelay.jobs import finalize_jobs, pause_job
from models.statuses import ChunkStatus, JobStatus, MessageStatus, PauseReason
from msgrelay import metrics, send_rate
from msgrelay.limits import take_token
from msgrelay.right_of_way import Way
from msgrelay.policy import holds
from msgrelay.routes import health
from msgrelay.routes.pick import assign
from msgrelay.retry import Action, decide, rate_limit_wait_s, request_id_reusable, split
from msgrelay.settings import Settings
from providers.base import Provider, Recipient, SendSpec
from providers.errors import AccountError, AmbiguousError, ProviderError, TransientError
from providers.http import SendConnection
from providers.registry import get_provider

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What happened to one call: `action` is done | skipped | retry | split; `countdown` for retry."""

    action: str
    countdown: float = 0.0
    detail: str = ""
    new_chunks: tuple[tuple[int, str], ...] = ()


def send_chunk(chunk_id: int, *, settings: Settings, accounts: Mapping[str, Account], way: Way = Way()) -> Outcome:
    """Send one chunk at most once; return what the task should do next. `way` is its part in verification calls'
    right of way (``msgrelay.right_of_way``): given before each of its transactions, cleared as its request leaves."""
    way.give()
    # One transaction reads the chunk, checks what may hold it back, reads its batch, claims the chunk and screens
    # the batch (suppression list, caps) in one statement less: a verification call waits on every round trip,
    # and a transaction costs two of its own (BEGIN, COMMIT; the pool pings only a connection in doubt). A worker
    # killed after the commit had, all but certainly, sent (so the sweeper's `unknown` is the truth), and one
    # killed before it left the chunk pending. The claim comes before the screen, so a second delivery of the
    # task that loses the claim counts no cap.
    claimed: Outcome | Claimed | None = None
    try:
        with session_scope() as session:
            claimed = _claim(session, chunk_id, settings, accounts)
    except BaseException:  # the claim's commit failed: nothing was claimed, nothing is sent
        if isinstance(claimed, Claimed):
            claimed.connection.close()
        raise
    if isinstance(claimed, Outcome):
        return claimed
    return _send(claimed, settings, way)


@dataclass(frozen=True)
class Claimed:
    """A chunk claimed for one try: what its request is built from, and the request (or why it could not be)."""

    chunk: Chunk
    job: Job
    provider: Provider
    account: Account
    spec: SendSpec
    batch: list[Recipient]
    ids: dict[str, int]  # custom id → message id, for writing the answer without another query
    tries: Tries
    connection: SendConnection
    request: Any = None
    not_built: ProviderError | None = None


#: built once: a verification call's claim spent more building ORM statements than the database spent running them
_CHUNK_AND_JOB = select(Chunk, Job).join(Job, Job.id == Chunk.job_id).where(Chunk.id == bindparam("chunk_id"))


def _claim(session: Session, chunk_id: int, settings: Settings, accounts: Mapping[str, Account]) -> Outcome | Claimed:
    """Read the chunk, carry out what holds it back (an outcome), or claim it with its screened batch."""
    row = session.execute(_CHUNK_AND_JOB, {"chunk_id": chunk_id}).first()
    if row is None:
        return Outcome("skipped", detail="no such chunk")
    chunk, job = row
    if chunk.status != ChunkStatus.PENDING or job.status != JobStatus.RUNNING:
        return Outcome("skipped", detail=f"chunk {chunk.status}, job {job.status}")
    provider = get_provider(job.provider)
    name, route = job.account, None  # the account this chunk goes through: the job's, or one its route picks
    if job.route is not None:
        route = routes_of(accounts).get(job.route)
        if route is None:
            pause_job(session, job.id, f"{PauseReason.CREDENTIALS}: route {job.route!r} is not configured")
            return Outcome("done", detail="route missing")
        name, stopped = assign(session, job, chunk, route)
        if name is None:
            pause_job(session, job.id, every_account_paused(route.name, stopped))
            return Outcome("done", detail="job paused: every account of its route is paused")
    account = accounts.get(name)
    if account is None or provider is None:
        pause_job(session, job.id, f"{PauseReason.CREDENTIALS}: account {name!r} is not configured")
        return Outcome("done", detail="account missing")
    if (held := _held(session, chunk, job, account, name, settings)) is not None:
        return held

    now = utcnow()
    request_id, request_id_at = chunk.request_id, chunk.request_id_at
    forgotten = False  # the provider may have an earlier try, under an id it no longer remembers
    if provider.idempotent_request_id:
        if not request_id_reusable(request_id_at, now, provider.request_id_window_s):
            if chunk.ambiguous_at is not None:
                forgotten = True
            else:
                request_id = None  # every earlier try was refused: a new id is safe
        if request_id is None:  # one id for the chunk's life in the window: every retry reuses it
            request_id, request_id_at = uuid.uuid4().hex, now
    # connected before the claim: a worker lost in the handshakes leaves the chunk pending, not in doubt
    connection = SendConnection(account.base_url).open()
    try:
        ids: dict[str, int] = {}
        batch: list[Recipient] = []
        spec = SendSpec(kind=job.kind, content=job.content, options=job.options, send_at=job.send_at)
        claimed, queued = claim_with_batch(
            session, chunk_id=chunk_id, request_id_before=chunk.request_id, request_id=request_id,
            request_id_at=request_id_at, now=utcnow(), job_id=job.id, lo=chunk.lo, hi=chunk.hi)
        if claimed is None:
            connection.close()
            return Outcome("skipped", detail="claimed by another worker")
        for mid, m, c, t in queued:
            batch.append(Recipient(mobile=m, custom_id=c, content=t))
            ids[c] = mid
        attempts, ambiguous_at = claimed
        if job.route is not None:  # each message records the account it is handed to
            set_messages_status(session, job_id=job.id, lo=chunk.lo, hi=chunk.hi,
                                from_statuses=[MessageStatus.QUEUED], account=name)
        if forgotten:
            connection.close()
            _give_up_unknown(session, chunk, job, "REQUEST_ID_EXPIRED",
                             "an earlier try may have been accepted and its request id has expired")
            return Outcome("done", detail="request id expired after an ambiguous try: unknown")
        if batch:
            batch = holds.screen(session, account, job, batch, ids, now=now, scopes=route.accounts if route else (),
                                 count_caps=attempts == 1 and chunk.parent_id is None)
        if not batch:
            connection.close()
            _set_chunk(session, chunk_id, ChunkStatus.SENT)
            finalize_jobs(session, [job.id])
            return Outcome("done", detail="nothing left to send")
        tries = Tries(attempts=attempts, ambiguous_before=ambiguous_at is not None, account=name)
        ready = Claimed(chunk, job, provider, account, spec, batch, ids, tries, connection)
        try:
            return replace(ready, request=provider.build_send(account, spec, batch, now, request_id=request_id))
        except ProviderError as exc:
            return replace(ready, not_built=exc)
        except Exception as exc:  # a bug building the request: nothing was sent, so it may be tried again
            log.exception("chunk %s: building the request failed", chunk_id)
            return replace(ready, not_built=TransientError("BUILD_ERROR", type(exc).__name__))
    except BaseException:
        connection.close()
        raise


def _held(session: Session, chunk: Chunk, job: Job, account: Account, name: str,
          settings: Settings) -> Outcome | None:
    """What keeps the chunk from going out now (validity passed, send window closed, balance short, rate limit),
    carried out in the database; None when nothing does."""
    now = utcnow()
    if job.valid_until is not None and now >= job.valid_until:  # too late: expire what is left, send nothing
        n = holds.expire_unsent(session, job.id, now, chunk_id=chunk.id)
        finalize_jobs(session, [job.id])
        return Outcome("done", detail=f"valid_until passed: {n} expired unsent")
    if (hold := holds.window_hold_of(account, job.kind, job.total, now)) is not None:
        holds.wait_for_window(session, job.id, hold, chunk.id)  # the chunk waits; the sweeper releases the job
        return Outcome("done", detail=f"held: {hold.waiting}")
    if account.balance_per_recipient:
        known = known_balance(account, max_age_s=settings.balance_fresh_s)
        needed = Decimal(str(account.balance_per_recipient)) * (chunk.hi - chunk.lo)
        if known is not None and known < needed:
            why = f"{PauseReason.BALANCE}: last known balance {known} < {needed} needed for the next chunk"
            if job.route is not None and chunk.ambiguous_at is None:  # nothing was sent: another account may
                return _fail_over(session, chunk, name, why)
            pause_job(session, job.id, why)
            return Outcome("done", detail="job paused: balance too low")
    if account.rate_limit:
        wait = take_token(name, account.rate_limit)
        if wait > 0:
            # the wait moves the chunk's due time, so the sweeper does not start a second chain meanwhile
            wait = rate_limit_wait_s(wait, settings)
            session.execute(update(Chunk).where(Chunk.id == chunk.id, Chunk.status == ChunkStatus.PENDING)
                            .values(next_attempt_at=utcnow() + timedelta(seconds=wait)))
            return Outcome("retry", countdown=wait, detail="rate limit")
    return None


def _send(claimed: Claimed, settings: Settings, way: Way) -> Outcome:
    """The claimed chunk's one request, and what its answer (or its failure) leaves in the database."""
    chunk, job, provider, batch, ids, tries = (claimed.chunk, claimed.job, claimed.provider, claimed.batch,
                                               claimed.ids, claimed.tries)
    chunk_id, name, spec, request, not_built = (chunk.id, tries.account, claimed.spec, claimed.request,
                                                claimed.not_built)
    if not_built is not None:
        claimed.connection.close()
        return _on_error(not_built, chunk, job, batch, provider, tries, settings)
    way.clear()  # a verification call's request leaves: the provider's round trip holds nothing off
    try:
        with metrics.provider_request(name, request.path):  # the answer's own refusals count as its outcome
            response = claimed.connection.send(request, read_timeout_s=settings.http_read_timeout_s)
            accepted = provider.parse_send(spec, batch, response)
    except ProviderError as exc:
        return _on_error(exc, chunk, job, batch, provider, tries, settings)
    except Exception as exc:  # a bug reading the answer: the provider may have accepted the request
        log.exception("chunk %s: reading the answer failed", chunk_id)
        return _on_error(AmbiguousError("ANSWER_ERROR", type(exc).__name__), chunk, job, batch, provider, tries,
                         settings)

    way.give()  # the answer is in hand; only its record waits (a worker lost meanwhile leaves it to the sweeper)
    with session_scope() as session:
        by_custom = {a.custom_id: a for a in accepted if a.custom_id}
        by_mobile = {a.mobile: a for a in accepted}
        sent_at = utcnow()
        results = []
        for r in batch:
            got = by_custom.get(r.custom_id) or by_mobile.get(r.mobile)
            results.append((ids[r.custom_id], MessageStatus.SUBMITTED if got else MessageStatus.UNKNOWN,
                            got.provider_msg_id if got else None))
        # a report may have been applied since the request went out: the send result never overwrites it
        record_send_results(session, results, sent_at=sent_at)
        sent = sum(1 for _, status, _ in results if status == MessageStatus.SUBMITTED)
        metrics.recipients(name, job.kind, MessageStatus.SUBMITTED, sent)
        metrics.recipients(name, job.kind, MessageStatus.UNKNOWN, len(results) - sent)
        task_id = next((a.task_id for a in accepted if a.task_id), None)
        _set_chunk(session, chunk_id, ChunkStatus.SENT, **({"provider_task_id": task_id} if task_id else {}))
    send_rate.count(name, sent)  # after the commit: the console's send rate counts what is recorded
    return Outcome("done", detail=f"{len(accepted)} of {len(batch)} accepted")


@dataclass(frozen=True)
class Tries:
    """What the chunk's row says of its tries: how many (this one included), and whether one was ambiguous."""

    attempts: int
    ambiguous_before: bool
    account: str = ""  # the account this try went through


def _set_chunk(session: Session, chunk_id: int, status: str, **values) -> None:
    update_chunk(session, chunk_id, status=status, updated_at=utcnow(), **values)


def _close_messages(session: Session, chunk: Chunk, status: str, exc: ProviderError, *, sent: bool = False) -> int:
    """Give the chunk's still-queued messages a final (or unknown) status with the provider's code; how many."""
    now = utcnow()
    values = {"status": status, "provider_state": exc.code[:64], "provider_desc": exc.message[:255] or None,
              "updated_at": now}
    if sent:
        values["submitted_at"] = now
    return set_messages_status(session, job_id=chunk.job_id, lo=chunk.lo, hi=chunk.hi,
                               from_statuses=[MessageStatus.QUEUED], **values)


def _give_up_unknown(session: Session, chunk: Chunk, job: Job, code: str, why: str) -> None:
    """The chunk and its unsent messages become `unknown`: the provider may have them, only reports settle it."""
    _set_chunk(session, chunk.id, ChunkStatus.UNKNOWN, error_code=code, error_desc=why)
    _close_messages(session, chunk, MessageStatus.UNKNOWN, AmbiguousError(code, why), sent=True)


def _on_error(exc: ProviderError, chunk: Chunk, job: Job, batch: list[Recipient], provider: Provider,
              tries: Tries, settings: Settings) -> Outcome:
    """Carry out the retry policy's decision for `exc` in the database; tell the task whether to retry."""
    decision = decide(exc, attempts=tries.attempts, batch_size=len(batch),
                      idempotent_request_id=provider.idempotent_request_id, settings=settings,
                      ambiguous_before=tries.ambiguous_before)
    err = {"error_code": exc.code[:64], "error_desc": exc.message[:255] or None}
    if isinstance(exc, AmbiguousError) and not tries.ambiguous_before:
        err["ambiguous_at"] = utcnow()  # remembered: from now on this chunk is never failed nor resent anew
    with session_scope() as session:
        if decision.action is Action.PAUSE:
            reason = exc.reason if isinstance(exc, AccountError) else PauseReason.CREDENTIALS
            why = f"{reason}: {exc.code}"
            _set_chunk(session, chunk.id, ChunkStatus.PENDING, **err)
            if job.route is not None and not tries.ambiguous_before and "ambiguous_at" not in err:
                return _fail_over(session, chunk, tries.account, why)
            health.pause(session, tries.account, why)  # its routes send around it until it is fixed
            pause_job(session, job.id, why)
            return Outcome("done", detail=f"job paused: {exc.code}")
        if decision.action is Action.UNKNOWN:
            _set_chunk(session, chunk.id, ChunkStatus.UNKNOWN, **err)
            n = _close_messages(session, chunk, MessageStatus.UNKNOWN, exc, sent=True)
            metrics.recipients(tries.account, job.kind, MessageStatus.UNKNOWN, n)
            return Outcome("done", detail="ambiguous: left to reports")
        if decision.action is Action.SPLIT:
            halves = _split(session, chunk)
            _set_chunk(session, chunk.id, ChunkStatus.SPLIT, **err)
            queue = provider.queue_for(job.kind, job.total)
            return Outcome("split", new_chunks=tuple((cid, queue) for cid in halves), detail=exc.code)
        if decision.action is Action.RETRY:
            metrics.RETRIES.labels(tries.account, exc.code[:64]).inc()
            due = utcnow() + timedelta(seconds=decision.countdown_s)
            # Back to pending first: if publishing the retry fails, the sweeper re-enqueues it.
            _set_chunk(session, chunk.id, ChunkStatus.PENDING, next_attempt_at=due, **err)
            return Outcome("retry", countdown=decision.countdown_s, detail=exc.code)
        rejected = decision.action is Action.REJECT
        _set_chunk(session, chunk.id, ChunkStatus.REJECTED if rejected else ChunkStatus.FAILED, **err)
        closed = MessageStatus.REJECTED if rejected else MessageStatus.FAILED
        metrics.recipients(tries.account, job.kind, closed, _close_messages(session, chunk, closed, exc))
        finalize_jobs(session, [job.id])
        return Outcome("done", detail=f"rejected: {exc.code}" if rejected else
                       f"gave up after {tries.attempts} attempts: {exc.code}")


def _fail_over(session: Session, chunk: Chunk, account: str, why: str) -> Outcome:
    """The chunk's account could not have accepted it (refused before accepting anything, or no balance for it):
    mark the account paused and send the chunk again at once, through the next account its route picks, with a
    new request id (the refused one was the old account's)."""
    health.pause(session, account, why)
    session.execute(update(Chunk).where(Chunk.id == chunk.id, Chunk.status == ChunkStatus.PENDING)
                    .values(account=None, request_id=None, request_id_at=None, next_attempt_at=utcnow()))
    return Outcome("retry", countdown=0.0, detail=f"failover: {account} {why}")


def every_account_paused(route: str, stopped: Mapping[str, str]) -> str:
    """A job's pause reason when no account of its route can send: the first account's reason leads."""
    first = next(iter(stopped.values()), f"{PauseReason.CREDENTIALS}: ")
    listed = "; ".join(f"{a} {why}" for a, why in stopped.items())
    return f"{first.split(':', 1)[0]}: every account of route {route!r} is paused ({listed})"[:255]


def _split(session: Session, chunk: Chunk) -> list[int]:
    """Two pending halves of a chunk refused for a bad number (``retry.split``); returns their ids."""
    now = utcnow()
    rows = [{"job_id": chunk.job_id, "parent_id": chunk.id, "lo": lo, "hi": hi, "status": ChunkStatus.PENDING,
             "next_attempt_at": now, "updated_at": now} for lo, hi in split(chunk.lo, chunk.hi)]
    return list(session.scalars(insert(Chunk).returning(Chunk.id, sort_by_parameter_order=True), rows))
