"""Submit: validate everything, write job + chunks + messages in one transaction, enqueue after commit."""
from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

import redis
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models import Chunk, Job, Message, get_engine, is_sqlite, session_scope, utcnow
from models.bulk import MESSAGE_COLUMNS, MESSAGE_COLUMNS_STATED, insert_job_at_once, insert_messages
from msgrelay.accounts import Account, routes_of
from msgrelay.routes.config import Route
from msgrelay import right_of_way
from msgrelay.content_check import precheck_content
from msgrelay.settings import get_settings
from msgrelay.webhooks.receivers import receiver_id, receiver_url
from msgrelay.templates import precheck_template
from models.statuses import ChunkStatus, HeldBack, JobStatus, MessageStatus, Queue
from msgrelay.policy import holds
from msgrelay.policy.suppressions import Lookup
from providers.base import Provider, Recipient, SendSpec
from providers.errors import InvalidInput
from providers.registry import get_provider
from providers.sending_rules import UNSUPPRESSED_KINDS, Hold, mobile_key


class Enqueue(Protocol):
    """Publishes (chunk id, queue) pairs once the rows are committed; `call` names a verification call's
    right-of-way member for its message."""

    def __call__(self, chunks: Sequence[tuple[int, str]], *, call: str | None = None) -> None: ...


MAX_RECIPIENTS_PER_JOB = 5_000_000
log = logging.getLogger(__name__)


def new_job_uid() -> str:
    """A job's uid, the prefix of its custom ids: the time in seconds, then 48 random bits. Later jobs sort after
    earlier ones, so the unique index of custom ids grows at its right edge (with random uids every page split
    in the middle of the index, 50/50, and it was twice the size)."""
    return f"{time.time_ns() // 1_000_000_000:08x}{secrets.token_hex(6)}"


def our_custom_id(uid: str, seq: int) -> str:
    """The custom id of a recipient the producer gave none: the job's uid and its seq, zero-padded to the largest
    job's digits, so that a job's ids sort as its seqs do (see `new_job_uid`)."""
    return f"{uid}-{seq:07d}"


@dataclass(frozen=True)
class Submitted:
    """What a producer gets back: the job id, how many recipients and chunks, and whether it is new."""

    id: int
    recipients: int
    chunks: int
    created: bool = True
    duplicates_removed: int = 0


def resolve(accounts: Mapping[str, Account], account: str, kind: str) -> tuple[Account, Provider]:
    """The account and provider for a job, or InvalidInput naming `account` or `kind`."""
    acct = accounts.get(account)
    if acct is None:
        known = ", ".join(sorted(accounts)) or "none configured"
        raise InvalidInput("account", f"unknown account {account!r}; known: {known}")
    provider = get_provider(acct.provider)
    if provider is None:
        raise InvalidInput("account", f"provider {acct.provider!r} of account {account!r} is not supported yet")
    provider.kind(kind)
    return acct, provider


def recipient_from(i: int, item: Any) -> Recipient:
    """The `i`-th recipient as given (a mobile string or {mobile, content?, custom_id?}); custom ids are filled
    in later. InvalidInput names `recipients[i]` and the field."""
    if isinstance(item, str):
        mobile, content, custom_id = item.strip(), None, ""
    elif isinstance(item, Mapping):
        unknown = set(item) - {"mobile", "content", "custom_id"}
        if unknown:
            raise InvalidInput(f"recipients[{i}].{sorted(unknown)[0]}", "unknown field; use mobile, content, custom_id")
        mobile = str(item.get("mobile") or "").strip()
        content = item.get("content")
        custom_id = str(item.get("custom_id") or "")
        if content is not None and not isinstance(content, str):
            raise InvalidInput(f"recipients[{i}].content", "must be a string")
        if not mobile:
            raise InvalidInput(f"recipients[{i}].mobile", "is required")
    else:
        raise InvalidInput(f"recipients[{i}]", "must be a mobile string or an object with 'mobile'")
    require_storable_text(f"recipients[{i}].mobile", mobile)
    require_storable_text(f"recipients[{i}].content", content)
    require_storable_text(f"recipients[{i}].custom_id", custom_id)
    return Recipient(mobile=mobile, custom_id=custom_id, content=content)


def normalise_recipients(raw: Sequence[Any]) -> tuple[list[Recipient], int]:
    """Strings or {mobile, content?, custom_id?} dicts → Recipients, without exact repeats, and how many
    repeats were dropped; a custom id given twice is refused."""
    if not isinstance(raw, (list, tuple)) or not raw:
        raise InvalidInput("recipients", "must be a non-empty list of mobiles or {mobile, content?, custom_id?} objects")
    if len(raw) > MAX_RECIPIENTS_PER_JOB:
        raise InvalidInput("recipients", f"at most {MAX_RECIPIENTS_PER_JOB} per job, got {len(raw)}")
    out: list[Recipient] = []
    given_ids: set[str] = set()
    for i, item in enumerate(raw):
        recipient = recipient_from(i, item)
        if recipient.custom_id:
            if recipient.custom_id in given_ids:
                raise InvalidInput(f"recipients[{i}].custom_id", f"{recipient.custom_id!r} is used twice in this job")
            given_ids.add(recipient.custom_id)
        out.append(recipient)
    return drop_repeats(out)


def drop_repeats(people: Sequence[Recipient]) -> tuple[list[Recipient], int]:
    """The recipients without exact repeats (same mobile and content, no custom id of their own), and how many
    were dropped: the same person listed twice is sent once. Run again once numbers are in the provider's form
    (`+61 422 118 000` and `0061422118000` are one phone)."""
    seen: set[tuple[str, str | None]] = set()
    out: list[Recipient] = []
    for r in people:
        if not r.custom_id:
            if (r.mobile, r.content) in seen:
                continue
            seen.add((r.mobile, r.content))
        out.append(r)
    return out, len(people) - len(out)


def require_storable_text(field: str, value: Any) -> None:
    """Refuse text no database can store (a lone surrogate, which UTF-8 cannot encode, or a NUL character),
    in `value` or anywhere inside it (options, MMS frames)."""
    if isinstance(value, str):
        if value.isascii() and "\x00" not in value:
            return
        if "\x00" in value:
            raise InvalidInput(field, "must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(field, "is not valid Unicode text (it holds a lone surrogate)") from None
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            require_storable_text(field, key)
            require_storable_text(f"{field}.{key}", inner)
    elif isinstance(value, (list, tuple)):
        for i, inner in enumerate(value):
            require_storable_text(f"{field}[{i}]", inner)


def _aware(when: datetime | None, field: str = "send_at") -> datetime | None:
    """`when` in UTC; InvalidInput naming `field` when it has no zone or falls outside the calendar once in UTC."""
    if when is None:
        return None
    if when.tzinfo is None:
        raise InvalidInput(field, "must carry a time zone, e.g. 2026-11-23T18:00:00+08:00")
    try:
        return when.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise InvalidInput(field, "is out of range: give a time between the years 1 and 9999 in UTC") from None


def _valid_until(when: datetime | None, send_at: datetime | None) -> datetime | None:
    """A job's `valid_until` in UTC: aware, still ahead, and after its `send_at`."""
    until = _aware(when, "valid_until")
    if until is not None:
        if until <= utcnow():
            raise InvalidInput("valid_until", f"{until.isoformat()} has already passed: nothing could be sent")
        if send_at is not None and until <= send_at:
            raise InvalidInput("valid_until", "must be after send_at: nothing could be sent in between")
    return until


def resolve_route(accounts: Mapping[str, Account], name: str, kind: str) -> tuple[list[Account], Provider, Route]:
    """A route's accounts (in order), provider and route, or InvalidInput naming `route` (an unknown route, or an
    account of it that cannot send `kind`) or `kind`."""
    route = routes_of(accounts).get(name)
    if route is None:
        known = ", ".join(sorted(routes_of(accounts))) or "none configured"
        raise InvalidInput("route", f"unknown route {name!r}; known: {known}")
    members = [accounts[a] for a in route.accounts]
    provider = get_provider(members[0].provider)
    for member in members:
        if kind not in get_provider(member.provider).kinds:
            raise InvalidInput("route", f"account {member.name!r} of route {name!r} ({member.provider}) cannot send "
                                        f"kind {kind!r}")
    provider.kind(kind)
    return members, provider, route


@dataclass(frozen=True)
class Prepared:
    """A job's account (a route's first), provider and spec, checked (recipients aside)."""

    account: Account
    provider: Provider
    spec: SendSpec
    idempotency_key: str | None
    webhook_url: str | None = None  # where the job's status events go (None: nowhere)
    valid_until: datetime | None = None  # unsent by then: expired, no provider call
    route: Route | None = None
    members: tuple[Account, ...] = ()  # the accounts it may go through: the route's, or just `account`

    def max_batch(self) -> int:
        """Recipients per chunk: the smallest batch of its accounts, so a chunk that moves stays valid."""
        return min(self.provider.max_batch(a, self.spec.kind) for a in self.members)

    def scopes(self) -> list[str]:
        """The accounts whose suppression lists hold for it."""
        return [a.name for a in self.members]


def prepare(accounts: Mapping[str, Account], account: str | None, kind: str, *, content: Any,
            options: Mapping[str, Any] | None, idempotency_key: str | None, send_at: datetime | None,
            callback_url: str | None = None, valid_until: datetime | None = None, route: str | None = None) -> Prepared:
    """Check everything of a job but its recipients; InvalidInput names the field. A job names an account or a
    route, not both."""
    if (account is None) == (route is None):
        raise InvalidInput("route" if route is not None else "account", "give an account or a route (exactly one)")
    the_route = None
    if route is not None:
        members, provider, the_route = resolve_route(accounts, route, kind)
        acct = members[0]
    else:
        acct, provider = resolve(accounts, account, kind)
        members = [acct]
    settings = get_settings()
    webhook_url = receiver_url(callback_url, settings.webhook_url)
    if webhook_url and not settings.webhook_secrets():
        raise InvalidInput("callback_url", "MSGRELAY_WEBHOOK_SECRET is not set here, so webhooks could not be signed")
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 128):
        raise InvalidInput("idempotency_key", "must be 1 to 128 characters")
    require_storable_text("idempotency_key", idempotency_key)
    require_storable_text("content", content)
    require_storable_text("options", dict(options or {}))
    spec = SendSpec(kind=kind, content=content, options=dict(options or {}), send_at=_aware(send_at))
    return Prepared(acct, provider, spec, idempotency_key, webhook_url, _valid_until(valid_until, spec.send_at),
                    the_route, tuple(members))


def precheck(job: Prepared) -> None:
    """The checks that read the database or ask the provider, made once the input itself is known good (for each
    account a route may send it through)."""
    for account in job.members:
        job.provider.precheck(account, job.spec)
        precheck_template(account, job.provider, job.spec)
        precheck_content(account, job.provider, job.spec)


def new_job(session: Session, job: Prepared, *, now: datetime, total: int, chunks: int = 0) -> Job:
    """The job's row (flushed, so it has its id and uid)."""
    row = job_row(session, job, now=now, total=total, chunks=chunks)
    session.add(row)
    session.flush()
    return row


def write_at_once(session: Session, job: Prepared, people: Sequence[Recipient], *, now: datetime) -> tuple[Job, list[int]]:
    """PostgreSQL, a job of one chunk (every verification call): its row, chunk and messages in one statement.
    The row returned carries the id it was given; it is not in the session (nothing more is written for it)."""
    row = job_row(session, job, now=now, total=len(people), chunks=1)
    hold = hold_at_submit(row, job, now)
    rows, columns, row.suppressed = recipient_rows(session, row, job, people, start=0, now=now)
    chunk = {"lo": 0, "hi": len(people), "status": ChunkStatus.PENDING, "attempts": 0,
             "next_attempt_at": (hold and hold.until) or now, "updated_at": now}
    row.id, chunk_id = insert_job_at_once(session, row, chunk, columns[1:], [r[1:] for r in rows])
    return row, [chunk_id]


def job_row(session: Session, job: Prepared, *, now: datetime, total: int, chunks: int) -> Job:
    """The job's row, not yet written; held `queued` until due unless the provider schedules by itself (a send
    time in the request)."""
    return Job(uid=new_job_uid(), account=job.account.name, provider=job.provider.name, kind=job.spec.kind,
              status=JobStatus.RUNNING if is_due(job, now) else JobStatus.QUEUED, content=job.spec.content,
              options=dict(job.spec.options), total=total, chunks=chunks, idempotency_key=job.idempotency_key,
              send_at=job.spec.send_at, created_at=now, updated_at=now, valid_until=job.valid_until,
              route=job.route.name if job.route else None,
              webhook_receiver_id=receiver_id(session, job.webhook_url) if job.webhook_url else None)


def is_due(job: Prepared, now: datetime) -> bool:
    """Whether the job is sent now (no send_at, a past one, or the provider holds it itself)."""
    return job.spec.send_at is None or job.spec.send_at <= now or job.provider.native_schedule


def add_chunks(session: Session, job: Job, *, seqs: int, batch: int, now: datetime, due: datetime | None = None) -> list[int]:
    """One pending chunk per `batch` of message seqs in [0, seqs), due at `due` (default now); returns their ids
    and sets the job's count."""
    rows = [{"job_id": job.id, "lo": lo, "hi": min(lo + batch, seqs), "status": ChunkStatus.PENDING,
             "next_attempt_at": due or now, "updated_at": now} for lo in range(0, seqs, batch)]
    if job.chunks != len(rows):  # known when the job was written (no second UPDATE of its row), unless streamed
        job.chunks = len(rows)
    return list(session.scalars(insert(Chunk).returning(Chunk.id, sort_by_parameter_order=True), rows)) if rows else []


def publish(job: Prepared, job_id: int, chunk_ids: Sequence[int], total: int, enqueue: Enqueue, *,
            call: str | None = None) -> None:
    """Publish a committed job's chunks (`call`: a verification call's member, for the otp task to end); a broker
    that is down is logged, and the sweeper publishes them."""
    queue = job.provider.queue_for(job.spec.kind, total)
    try:
        enqueue([(cid, queue) for cid in chunk_ids], call=call)
    except Exception as exc:  # the job is committed: the sweeper publishes pending chunks it finds
        if broker_down(exc):
            log.warning("job %s: publishing its chunks failed; the sweeper will publish them", job_id, exc_info=True)
        else:  # a bug, not the broker: the job stays accepted all the same, but it is said as an error
            log.error("job %s: publishing its chunks failed unexpectedly; the sweeper will publish them", job_id,
                      exc_info=True)


def broker_down(exc: BaseException) -> bool:
    """Whether publishing failed for want of a broker (Celery's publish raises kombu's OperationalError)."""
    from kombu.exceptions import KombuError  # loaded already once Celery has published; kept off the API's start
    return isinstance(exc, (KombuError, redis.RedisError, OSError))


def submit_job(
    *,
    accounts: Mapping[str, Account],
    account: str | None = None,
    kind: str,
    recipients: Sequence[Any],
    enqueue: Enqueue,
    content: Any = None,
    options: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
    send_at: datetime | None = None,
    database_url: str | None = None,
    callback_url: str | None = None,
    valid_until: datetime | None = None,
    route: str | None = None,
) -> Submitted:
    """Validate, then write the whole job in one transaction, then enqueue its chunks (transactional outbox)."""
    job = prepare(accounts, account, kind, content=content, options=options, idempotency_key=idempotency_key,
                  send_at=send_at, callback_url=callback_url, valid_until=valid_until, route=route)
    people, removed = normalise_recipients(recipients)
    people, removed_after = drop_repeats(job.provider.normalise(job.spec, people))
    removed += removed_after
    job.provider.validate(job.spec, people)
    precheck(job)
    now = utcnow()
    batch = job.max_batch()
    # one batch on PostgreSQL is one write (`write_at_once`): it needs no transaction of its own, so no BEGIN and
    # COMMIT round trips (the reads before it are single statements, and an idempotency race ends in its INSERT)
    at_once = 0 < len(people) <= batch and not is_sqlite(get_engine(database_url))
    # a verification call holds throughput work off from its write (counted beside it) until the otp worker sends
    # its request
    call = right_of_way.Call(counted=job.provider.queue_for(job.spec.kind, len(people)) == Queue.OTP
                             and get_settings().right_of_way_ms > 0)
    try:
        written = _write(job, people, idempotency_key=idempotency_key, database_url=database_url, at_once=at_once,
                         batch=batch, now=now)
        if isinstance(written, Submitted):
            return written
        row, chunk_ids = written
        if row.status == JobStatus.RUNNING and row.waiting_until is None:
            publish(job, row.id, chunk_ids, row.total, enqueue, call=call.hand_over())
    finally:
        call.close()
    return Submitted(row.id, row.total, row.chunks, created=True, duplicates_removed=removed)


def _write(job: Prepared, people: Sequence[Recipient], *, idempotency_key: str | None, database_url: str | None,
           at_once: bool, batch: int, now: datetime) -> Submitted | tuple[Job, list[int]]:
    """Write a short job in one transaction (or one statement): its row and chunk ids, or the earlier job of the
    same idempotency key."""
    try:
        with session_scope(database_url, autocommit=at_once) as session:
            if idempotency_key and (old := _by_key(session, idempotency_key)):
                return Submitted(old.id, old.total, old.chunks, created=False)
            _check_custom_ids(session, people)
            if at_once:
                return write_at_once(session, job, people, now=now)
            row = new_job(session, job, now=now, total=len(people), chunks=-(-len(people) // batch))
            hold = hold_at_submit(row, job, now)
            chunk_ids = add_chunks(session, row, seqs=len(people), batch=batch, now=now, due=hold and hold.until)
            row.suppressed = insert_recipients(session, row, job, people, start=0, now=now)
            return row, chunk_ids
    except IntegrityError:
        # Two producers raced with one idempotency key: the other one won; answer with its job.
        if idempotency_key:
            with session_scope(database_url) as session:
                if old := _by_key(session, idempotency_key):
                    return Submitted(old.id, old.total, old.chunks, created=False)
        raise


def hold_at_submit(row: Job, job: Prepared, now: datetime) -> Hold | None:
    """A job due now whose send window is closed waits for it (its chunks are not published)."""
    hold = holds.window_hold_of(job.account, job.spec.kind, row.total, now) if row.status == JobStatus.RUNNING else None
    if hold is not None:
        row.waiting, row.waiting_until = hold.waiting, hold.until
    return hold


def insert_recipients(session: Session, row: Job, job: Prepared, people: Sequence[Recipient], *, start: int,
                      now: datetime, lookup: Lookup | None = None) -> int:
    """Write the message rows of `people` (seqs from `start`); returns how many were suppressed. A submit in
    batches passes one `lookup` for all of them."""
    rows, columns, suppressed = recipient_rows(session, row, job, people, start=start, now=now, lookup=lookup)
    insert_messages(session, rows, columns)
    return suppressed


def recipient_rows(session: Session, row: Job, job: Prepared, people: Sequence[Recipient], *, start: int,
                   now: datetime, lookup: Lookup | None = None) -> tuple[Iterable[tuple], Sequence[str], int]:
    """The message rows of `people` (seqs from `start`), their columns and how many are suppressed: a recipient
    on the suppression list is written `rejected` (SUPPRESSED) at once (a verification call is never
    suppressed). Rows are made as they are read (a batch of a streamed million is never held twice)."""
    hit: set[str] = set()
    by_mobile = job.provider.ids_name_requests  # its reports name no custom id: they find the message by mobile
    if job.spec.kind not in UNSUPPRESSED_KINDS:
        keys = [mobile_key(r.mobile) for r in people]
        hit = (lookup or Lookup(session, job.scopes())).hits(keys)
    if not hit:
        return ((row.id, start + i, r.mobile, r.content, r.custom_id or our_custom_id(row.uid, start + i), by_mobile,
                 MessageStatus.QUEUED, now) for i, r in enumerate(people)), MESSAGE_COLUMNS, 0
    return ((row.id, start + i, r.mobile, r.content, r.custom_id or our_custom_id(row.uid, start + i), by_mobile, *(
        (MessageStatus.REJECTED, now, HeldBack.SUPPRESSED.value, "on the suppression list") if key in hit
        else (MessageStatus.QUEUED, now, None, None)))
        for i, (r, key) in enumerate(zip(people, keys))), MESSAGE_COLUMNS_STATED, sum(1 for key in keys if key in hit)


def _by_key(session: Session, key: str) -> Job | None:
    return session.exec(select(Job).where(Job.idempotency_key == key)).first()


def _check_custom_ids(session: Session, people: Sequence[Recipient]) -> None:
    """Producer-given custom ids must be new: the provider reports by them."""
    given = [r.custom_id for r in people if r.custom_id]
    for start in range(0, len(given), 1000):
        part = given[start:start + 1000]
        taken = session.exec(select(Message.custom_id).where(Message.custom_id.in_(part))).first()
        if taken:
            index = next(i for i, r in enumerate(people) if r.custom_id == taken)
            raise InvalidInput(f"recipients[{index}].custom_id", f"{taken!r} is already used by another message")
