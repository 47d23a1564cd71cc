"""Delivery reports: poll (drain pages under a per-account lock), keep each page before parsing it, match the
reports to the account's messages and apply them, and store them exactly as received in the same transaction
(a page a row; a report that matched nothing also as a raw row that waits for its message).

A provider that ids whole requests (qyxs `taskID`, ihuyi `task_id`) cannot name the messages of a request whose
answer was lost (an ambiguous send: the chunk is `unknown` and never learned its task id). Its reports still
name the task and each mobile: when every mobile of an unknown task belongs to exactly one `unknown` chunk of
the account, that chunk's request was the task, and its messages learn their ids from the reports.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from datetime import timedelta

from sqlalchemy import func, Row, false, select, update
from sqlmodel import Session

from models import Chunk, Job, Message, RawReport, ReportPage, session_scope, utcnow
from models.bulk import apply_reports, clip, find_messages, insert_rows, update_by_id, update_messages_by_id
from models.db import ping
from models.statuses import ChunkStatus, MessageStatus
from msgrelay import metrics, right_of_way
from msgrelay.accounts import Account
from msgrelay.jobs import finalize_jobs
from msgrelay.limits import account_lock
from msgrelay.settings import Settings
from msgrelay.spool import Spool
from providers.base import HttpResponse, Report
from providers.registry import get_provider

#: a report may turn these into its own status; `expired` only means "no report came in time"
UPDATABLE = [MessageStatus.QUEUED, MessageStatus.SUBMITTED, MessageStatus.UNKNOWN, MessageStatus.EXPIRED]
MAX_PAGES_PER_POLL = 200
BATCH_REPORTS = 5000  # reports settled in one transaction (several pages)
log = logging.getLogger(__name__)
REMATCH_WINDOW = timedelta(hours=6)


#: report lags observed per batch (a sample: a histogram of it has the same shape)
LAG_SAMPLE = 100
RAW_COLUMNS = ("account", "provider", "source", "provider_msg_id", "custom_id", "mobile", "status", "state", "desc",
               "reported_at", "payload", "received_at", "matched", "message_id")
PAGE_COLUMNS = ("account", "provider", "source", "size", "reports", "message_ids", "received_at")


def store_raw(session: Session, account: Account, reports: Sequence[Report], source: str,
              message_ids: Sequence[int | None] | None = None) -> None:
    """Keep the reports exactly as received, in one page with the message each settled (None: none); each that
    settled none also gets a raw row (COPY on PostgreSQL) with what a later match needs."""
    now = utcnow()
    settled = message_ids if message_ids is not None else [None] * len(reports)
    insert_rows(session, ReportPage.__table__, PAGE_COLUMNS, [(
        account.name, account.provider, source, len(reports),
        [r.raw if type(r.raw) is dict else dict(r.raw) for r in reports],  # made storable by bulk.json_text
        settled, now)])
    if waiting := [r for r, mid in zip(reports, settled) if mid is None]:
        insert_rows(session, RawReport.__table__, RAW_COLUMNS, (
            (account.name, account.provider, source, clip(r.provider_msg_id, 64), clip(r.custom_id, 64),
             clip(r.mobile, 32), str(r.status), clip(r.state or "", 64), clip(r.desc or "", 255) or None,
             r.reported_at, r.raw if type(r.raw) is dict else dict(r.raw), now, False, None) for r in waiting))


def settle(session: Session, account: str, items: Sequence[Any]) -> list[int | None]:
    """Apply reports (or raw report rows: anything with custom_id, provider_msg_id, mobile, status, state, desc
    and reported_at), in order, to the account's messages; returns the message each one matched (None: not yet
    recorded, e.g. a report that came before its submission was written)."""
    now = utcnow()
    keys, by_custom, by_answer = last_words(items, now)
    changed = apply_reports(session, account, by_custom, by_answer, now=now, updatable=UPDATABLE)
    found = {key: mid for mid, _, key, _ in changed}
    if unchanged := [key for key in (*by_custom, *by_answer) if key not in found]:  # final already, or not found
        found.update(_ours(session, account, unchanged))
    jobs: set[int] = set()
    reached: Counter = Counter()  # (job, status) → recipients that reached it
    for _, job_id, _, status in changed:
        if status is not None:
            jobs.add(job_id)
            reached[(job_id, status)] += 1
    finalize_jobs(session, jobs)
    _count(session, account, reached, items, now)
    return [None if key is None else found.get(key) for key in keys]


#: statuses a report writes that no later report may replace
_FINAL_WORDS = frozenset(s.value for s in MessageStatus if s not in UPDATABLE and s != MessageStatus.UNKNOWN)


def last_words(items: Sequence[Any], now: Any) -> tuple[list, dict[str, tuple], dict[tuple[str, str], tuple]]:
    """Each report's key (its custom id; else (mobile, provider id); else None), and per key what its reports say
    in order, `(status, state, desc, reported_at)`: the first final status stays (a later report cannot replace
    it); a state no map knows keeps the status before it (None: the message's own)."""
    keys: list = []
    by_custom: dict[str, tuple] = {}
    by_answer: dict[tuple[str, str], tuple] = {}
    unknown = MessageStatus.UNKNOWN.value
    for r in items:
        if r.custom_id:
            key, book = clip(r.custom_id, 64), by_custom
        elif r.provider_msg_id and (mobile := report_mobile(r)):
            key, book = (mobile, clip(r.provider_msg_id, 64)), by_answer
        else:
            keys.append(None)
            continue
        keys.append(key)  # a custom id is a str, the other key a tuple: the two never meet
        status = str(r.status)
        before = book.get(key)
        if before is not None:
            if before[0] in _FINAL_WORDS:
                continue
            if status == unknown:
                status = before[0]
        elif status == unknown:
            status = None
        book[key] = (status, clip(r.state, 64), clip(r.desc, 255), r.reported_at or now)
    return keys, by_custom, by_answer


def _ours(session: Session, account: str, keys: Sequence[Any]) -> dict[Any, int]:
    """The account's final messages named by these keys (custom ids, (mobile, provider id) pairs): the reports
    the UPDATE left unchanged because their message had a final word already. One still open was not visible to
    the UPDATE: its answer (which gives it the provider id) committed between the two statements, each of which
    reads the database as of its own start. Such a report has settled nothing, and waits for the next match."""
    candidates = find_messages(session, [k for k in keys if type(k) is str], [k for k in keys if type(k) is tuple])
    # an id another account's provider also gave must not settle ours; a route job's message names the account
    # it was handed to: that account's reports settle it
    jobs = set(session.scalars(select(Job.id).where(Job.id.in_({m[1] for m in candidates if m[5] is None} or {0}),
                                                     Job.account == account)))
    wanted = set(keys)
    found: dict[Any, int] = {}
    for mid, job_id, custom_id, pid, status, owner, mobile in candidates:
        if status not in UPDATABLE and (owner == account or (owner is None and job_id in jobs)):
            for key in (custom_id, (mobile, pid)):
                if key in wanted:
                    found[key] = mid
    return found


def report_mobile(report: Any) -> str | None:
    """The mobile a report names, to find its message by provider id: its own field, else the one a `task:mobile`
    id names (qyxs, ihuyi); None when it names none (such a report matches by custom id only)."""
    _, colon, tail = report.provider_msg_id.rpartition(":")
    return clip(report.mobile or (tail if colon else None), 32) or None


def _count(session: Session, account: str, reached: Counter, items: Sequence[Any], now: Any) -> None:
    """Metrics of a batch: recipients per kind and status reached, and the report lag of a sample of at most
    LAG_SAMPLE reports (each observation costs microseconds; a page holds thousands)."""
    if reached:
        kinds = dict(session.execute(select(Job.id, Job.kind).where(Job.id.in_({j for j, _ in reached}))).all())
        by_kind: Counter = Counter()
        for (job_id, status), n in reached.items():
            by_kind[(kinds.get(job_id, ""), status)] += n
        for (kind, status), n in by_kind.items():
            metrics.recipients(account, kind, status, n)
    stride = max(1, len(items) // LAG_SAMPLE)
    for r in items[::stride]:
        if getattr(r, "reported_at", None) is not None:
            metrics.REPORT_LAG.labels(account).observe(max(0.0, (now - r.reported_at).total_seconds()))


def match_reports(session: Session, raw_ids: Iterable[int] | None = None, *, account: str | None = None) -> int:
    """Apply unmatched raw reports (the given ids, or the account's recent ones) to their messages."""
    # the columns matching needs, not the raw payload
    query = select(RawReport.id, RawReport.account, RawReport.custom_id, RawReport.provider_msg_id, RawReport.mobile,
                   RawReport.status, RawReport.state, RawReport.desc,
                   RawReport.reported_at).where(RawReport.matched == false())
    if raw_ids is not None:
        ids = list(raw_ids)
        if not ids:
            return 0
        query = query.where(RawReport.id.in_(ids))
    else:
        query = query.where(RawReport.account == account, RawReport.received_at > utcnow() - REMATCH_WINDOW)
    by_account: dict[str, list[Row]] = defaultdict(list)
    # in received order, the partial index's: ordered by id, a generic plan (psycopg prepares a statement run five
    # times) walked the primary key through every matched report to find none, 393 ms at 1,000,000 reports
    for raw in session.execute(query.order_by(RawReport.received_at, RawReport.id).limit(20_000)).all():
        by_account[raw.account].append(raw)
    matched = []
    for acct, raws in by_account.items():
        matched += [{"id": raw.id, "matched": True, "message_id": mid}
                    for raw, mid in zip(raws, settle(session, acct, raws)) if mid is not None]
    update_by_id(session, RawReport, matched)
    return len(matched)


def ingest(account: Account, reports: Sequence[Report], source: str) -> int:
    """Settle the reports and store them with what each settled, in one transaction; returns how many matched.
    If settling fails, the reports are stored unmatched (a report is handed out once: never lose one) and the
    next poll's rematch tries again; if storing fails too, the caller keeps them (the spool, the push's 5xx)."""
    if not reports:
        return 0
    try:
        with session_scope() as session:
            settled = settle(session, account.name, reports)
            store_raw(session, account, reports, source, settled)
            return sum(mid is not None for mid in settled)
    except Exception:
        log.exception("account %s: settling %d reports failed; storing them unmatched", account.name, len(reports))
    with session_scope() as session:
        store_raw(session, account, reports, source)
    return 0


def learn_task_ids(session: Session, account: Account, *, window: timedelta = REMATCH_WINDOW) -> int:
    """Give `unknown` chunks the task ids their reports reveal (see the module's docstring); returns how many
    chunks learned theirs. Only for providers whose ids name a request (`task:mobile`)."""
    provider = get_provider(account.provider)
    if provider is None or not provider.ids_name_requests:
        return 0
    since = utcnow() - window
    mobiles_of: dict[str, set[str]] = defaultdict(set)
    for pid, mobile in session.execute(select(RawReport.provider_msg_id, RawReport.mobile).where(
            RawReport.account == account.name, RawReport.matched == false(), RawReport.received_at > since,
            RawReport.provider_msg_id.is_not(None)).limit(20_000)):
        task, _, pid_mobile = pid.rpartition(":")
        if task and (mobile or pid_mobile):
            mobiles_of[task].add(mobile or pid_mobile)
    if not mobiles_of:
        return 0
    through = func.coalesce(Chunk.account, Job.account) == account.name  # a route job's chunk names its account
    known = set(session.scalars(select(Chunk.provider_task_id).join(Job, Job.id == Chunk.job_id).where(
        through, Chunk.provider_task_id.in_(list(mobiles_of)))))
    candidates = session.execute(select(Chunk.id, Chunk.job_id, Chunk.lo, Chunk.hi).join(Job, Job.id == Chunk.job_id)
                                 .where(through, Chunk.status == ChunkStatus.UNKNOWN,
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
    counting = threading.Lock()
    give_way = right_of_way.waiter(settings.right_of_way_s, "poll")  # throughput work: verification calls first

    def fetch() -> HttpResponse:
        give_way()
        return metrics.call(account.name, account.base_url, provider.build_report_query(account, utcnow()),
                            sending=False, read_timeout_s=settings.http_read_timeout_s)

    def store(reports: Sequence[Report]) -> None:  # called by the spool's writer threads, several at once
        nonlocal matched
        give_way()
        n = ingest(account, reports, "poll")
        with counting:
            matched += n

    try:
        ping()  # the database is down: fetch nothing (the provider keeps what is not fetched)
        spool = Spool(account.name, "reports")
        sizes = spool.drain(provider.parse_reports, store)  # pages an earlier poll kept but could not store
        sizes += spool.pull(
            fetch, provider.parse_reports, store, pages=MAX_PAGES_PER_POLL, page_size=provider.report_page_size,
            batch_items=BATCH_REPORTS, after_page=lambda: lock.extend(30, replace_ttl=True))
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
