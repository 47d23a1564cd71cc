"""Delivery reports: poll (drain pages under a per-account lock), keep each page before parsing it, store raw
reports first, then match them to the account's messages and apply them.

A provider that ids whole requests (qyxs `taskID`, ihuyi `task_id`) cannot name the messages of a request whose
answer was lost (an ambiguous send: the chunk is `unknown` and never learned its task id). Its reports still
name the task and each mobile: when every mobile of an unknown task belongs to exactly one `unknown` chunk of
the account, that chunk's request was the task, and its messages learn their ids from the reports.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

from sqlalchemy import Row, or_, select, update
from sqlmodel import Session

from models import Chunk, Job, Message, RawReport, session_scope, utcnow
from models.bulk import clip, insert_rows, storable, update_by_id, update_messages_by_id
from models.db import ping
from models.statuses import ChunkStatus, MessageStatus
from msgrelay.accounts import Account
from msgrelay.jobs import finalize_jobs
from msgrelay.limits import account_lock
from msgrelay.settings import Settings
from msgrelay.spool import Spool
from providers.base import Report
from providers.http import http_send
from providers.registry import get_provider

#: a report may turn these into its own status; `expired` only means "no report came in time"
UPDATABLE = [MessageStatus.QUEUED, MessageStatus.SUBMITTED, MessageStatus.UNKNOWN, MessageStatus.EXPIRED]
MAX_PAGES_PER_POLL = 200
REMATCH_WINDOW = timedelta(hours=6)


RAW_COLUMNS = ("account", "provider", "source", "provider_msg_id", "custom_id", "mobile", "status", "state", "desc",
               "reported_at", "payload", "received_at", "matched")


def store_raw(session: Session, account: Account, reports: Sequence[Report], source: str) -> list[int]:
    """Insert the reports exactly as received (COPY on PostgreSQL); returns their ids (in order)."""
    if not reports:
        return []
    now = utcnow()
    insert_rows(session, RawReport.__table__, RAW_COLUMNS, (
        (account.name, account.provider, source, clip(r.provider_msg_id, 64), clip(r.custom_id, 64),
         clip(r.mobile, 32), str(r.status), clip(r.state or "", 64), clip(r.desc or "", 255) or None, r.reported_at,
         storable(dict(r.raw)), now, False)
        for r in reports))
    # this batch's rows are the account's unmatched ones stamped with this very microsecond
    return list(session.scalars(select(RawReport.id).where(
        RawReport.matched.is_(False), RawReport.received_at == now, RawReport.account == account.name,
    ).order_by(RawReport.id)))


def match_reports(session: Session, raw_ids: Iterable[int] | None = None, *, account: str | None = None) -> int:
    """Apply unmatched raw reports (the given ids, or the account's recent ones) to their messages."""
    # the columns matching needs, not the raw payload
    query = select(RawReport.id, RawReport.account, RawReport.custom_id, RawReport.provider_msg_id,
                   RawReport.status, RawReport.state, RawReport.desc,
                   RawReport.reported_at).where(RawReport.matched.is_(False))
    if raw_ids is not None:
        ids = list(raw_ids)
        if not ids:
            return 0
        query = query.where(RawReport.id.in_(ids))
    else:
        query = query.where(RawReport.account == account, RawReport.received_at > utcnow() - REMATCH_WINDOW)
    applied = 0
    by_account: dict[str, list[Row]] = defaultdict(list)
    for raw in session.execute(query.order_by(RawReport.id).limit(20_000)).all():
        by_account[raw.account].append(raw)
    for acct, raws in by_account.items():
        for start in range(0, len(raws), 500):
            applied += _apply(session, acct, raws[start:start + 500])
    return applied


def _apply(session: Session, account: str, raws: Sequence[Row]) -> int:
    """Apply one batch of an account's raw report rows to that account's messages; returns how many matched."""
    customs = [r.custom_id for r in raws if r.custom_id]
    pids = [r.provider_msg_id for r in raws if r.provider_msg_id and not r.custom_id]
    candidates = session.execute(
        select(Message.id, Message.job_id, Message.custom_id, Message.provider_msg_id, Message.status).where(
            or_(Message.custom_id.in_(customs or [""]), Message.provider_msg_id.in_(pids or [""])))
    ).all()
    # an id another account's provider also gave must not settle ours; filtered here, not joined: a join on the
    # job's account lets the planner scan every message of the account's jobs instead of the two id indexes
    ours = set(session.scalars(select(Job.id).where(Job.id.in_({m.job_id for m in candidates} or {0}),
                                                     Job.account == account)))
    found = [m for m in candidates if m.job_id in ours]
    by_custom = {m.custom_id: m for m in found}
    by_pid = {m.provider_msg_id: m for m in found if m.provider_msg_id}
    now = utcnow()
    changes, matched, jobs = {}, [], set()
    for raw in raws:
        msg = by_custom.get(raw.custom_id) if raw.custom_id else by_pid.get(raw.provider_msg_id)
        if msg is None:
            continue  # not recorded yet (report before submission): matched on a later poll
        matched.append({"id": raw.id, "matched": True, "message_id": msg.id})
        current = changes.get(msg.id, {}).get("status", msg.status)
        if current in UPDATABLE and raw.status != MessageStatus.UNKNOWN:
            changes[msg.id] = {"id": msg.id, "status": raw.status, "provider_state": raw.state,
                               "provider_desc": raw.desc, "reported_at": raw.reported_at or now, "updated_at": now}
            jobs.add(msg.job_id)
        elif current in UPDATABLE:  # an unrecognised state: keep the provider's words, status unchanged
            changes[msg.id] = {"id": msg.id, "status": current, "provider_state": raw.state,
                               "provider_desc": raw.desc, "reported_at": raw.reported_at or now, "updated_at": now}
    update_messages_by_id(session, list(changes.values()))
    update_by_id(session, RawReport, matched)
    finalize_jobs(session, jobs)
    return len(matched)


def ingest(account: Account, reports: Sequence[Report], source: str) -> int:
    """Store raw reports (committed first), then match them; returns how many matched."""
    with session_scope() as session:
        ids = store_raw(session, account, reports, source)
    with session_scope() as session:
        return match_reports(session, ids)


def learn_task_ids(session: Session, account: Account, *, window: timedelta = REMATCH_WINDOW) -> int:
    """Give `unknown` chunks the task ids their reports reveal (see the module's docstring); returns how many
    chunks learned theirs. Only for providers whose ids name a request (`task:mobile`)."""
    provider = get_provider(account.provider)
    if provider is None or not provider.ids_name_requests:
        return 0
    since = utcnow() - window
    mobiles_of: dict[str, set[str]] = defaultdict(set)
    for pid, mobile in session.execute(select(RawReport.provider_msg_id, RawReport.mobile).where(
            RawReport.account == account.name, RawReport.matched.is_(False), RawReport.received_at > since,
            RawReport.provider_msg_id.is_not(None)).limit(20_000)):
        task, _, pid_mobile = pid.rpartition(":")
        if task and (mobile or pid_mobile):
            mobiles_of[task].add(mobile or pid_mobile)
    if not mobiles_of:
        return 0
    known = set(session.scalars(select(Chunk.provider_task_id).join(Job, Job.id == Chunk.job_id).where(
        Job.account == account.name, Chunk.provider_task_id.in_(list(mobiles_of)))))
    candidates = session.execute(select(Chunk.id, Chunk.job_id, Chunk.lo, Chunk.hi).join(Job, Job.id == Chunk.job_id)
                                 .where(Job.account == account.name, Chunk.status == ChunkStatus.UNKNOWN,
                                        Chunk.provider_task_id.is_(None), Chunk.updated_at > since)).all()
    if not candidates:
        return 0
    unknown_mobiles = {c.id: set(session.scalars(select(Message.mobile).where(
        Message.job_id == c.job_id, Message.seq >= c.lo, Message.seq < c.hi,
        Message.status == MessageStatus.UNKNOWN, Message.provider_msg_id.is_(None)))) for c in candidates}
    learned = 0
    for task, mobiles in mobiles_of.items():
        owners = [c for c in candidates if mobiles <= unknown_mobiles[c.id]]
        if task in known or len(owners) != 1:
            continue  # already known, or not one chunk's alone: leave it rather than guess
        (chunk,) = owners
        session.execute(update(Chunk).where(Chunk.id == chunk.id).values(provider_task_id=task, updated_at=utcnow()))
        update_messages_by_id(session, [
            {"id": mid, "provider_msg_id": f"{task}:{mobile}"}
            for mid, mobile in session.execute(select(Message.id, Message.mobile).where(
                Message.job_id == chunk.job_id, Message.seq >= chunk.lo, Message.seq < chunk.hi,
                Message.status == MessageStatus.UNKNOWN, Message.provider_msg_id.is_(None)))])
        unknown_mobiles[chunk.id] = set()  # one task per chunk
        learned += 1
    return learned


def rematch(account: Account) -> int:
    """Match the account's recent unmatched reports again, after learning what task ids they reveal."""
    with session_scope() as session:
        learn_task_ids(session, account)
    with session_scope() as session:
        return match_reports(session, account=account.name)


def poll_reports(account: Account, settings: Settings) -> dict[str, int]:
    """Drain the account's report query until a short page, under a per-account lock; every page is kept in
    the spool before it is parsed and dropped only once stored."""
    provider = get_provider(account.provider)
    if provider is None:
        return {"fetched": 0, "matched": 0}
    if not provider.has_report_query or not account.poll_reports:
        # pushed reports only: nothing to fetch, but a push that came before its submission was recorded
        # (ihuyi pushes a stalled request's receipts before the retry learns its task_id) waits to be matched
        return {"fetched": 0, "matched": rematch(account)}
    lock = account_lock(account.name, "poll-reports", timeout_s=max(60.0, settings.http_read_timeout_s * 4))
    if not lock.acquire():
        return {"fetched": 0, "matched": 0, "locked": 1}
    matched = 0

    def store(reports: Sequence[Report]) -> None:
        nonlocal matched
        matched += ingest(account, reports, "poll")

    try:
        ping()  # the database is down: fetch nothing (the provider keeps what is not fetched)
        spool = Spool(account.name, "reports")
        sizes = spool.drain(provider.parse_reports, store)  # pages an earlier poll kept but could not store
        for _ in range(MAX_PAGES_PER_POLL):
            spool.keep(http_send(account.base_url, provider.build_report_query(account, utcnow()), sending=False,
                                 read_timeout_s=settings.http_read_timeout_s))
            page = spool.drain(provider.parse_reports, store)
            sizes += page
            lock.extend(30, replace_ttl=True)
            if not page or page[-1] < provider.report_page_size:
                break
        matched += rematch(account)  # reports that came before their submission was recorded
    finally:
        try:
            lock.release()
        except Exception:  # expired meanwhile: another poller may hold it now; nothing to undo
            pass
    return {"fetched": sum(sizes), "matched": matched}


def accounts_to_poll(accounts: Mapping[str, Account]) -> list[str]:
    """Names of accounts to poll: with a report query to drain, or pushed reports waiting for their match."""
    return [n for n, a in accounts.items() if get_provider(a.provider) is not None]
