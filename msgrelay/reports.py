"""Delivery reports: poll (drain pages under a per-account lock), store raw first, then match and apply."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

from sqlalchemy import Row, or_, select
from sqlmodel import Session

from models import Message, RawReport, session_scope, utcnow
from models.bulk import insert_rows, update_by_id, update_messages_by_id
from msgrelay.accounts import Account
from msgrelay.jobs import finalize_jobs
from msgrelay.limits import account_lock
from msgrelay.settings import Settings
from models.statuses import MessageStatus
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
        (account.name, account.provider, source, r.provider_msg_id, r.custom_id, r.mobile, str(r.status),
         (r.state or "")[:64], (r.desc or "")[:255] or None, r.reported_at, dict(r.raw), now, False)
        for r in reports))
    # this batch's rows are the account's unmatched ones stamped with this very microsecond
    return list(session.scalars(select(RawReport.id).where(
        RawReport.matched.is_(False), RawReport.received_at == now, RawReport.account == account.name,
    ).order_by(RawReport.id)))


def match_reports(session: Session, raw_ids: Iterable[int] | None = None, *, account: str | None = None) -> int:
    """Apply unmatched raw reports (the given ids, or the account's recent ones) to their messages."""
    # the columns matching needs, not the raw payload
    query = select(RawReport.id, RawReport.custom_id, RawReport.provider_msg_id, RawReport.status, RawReport.state,
                   RawReport.desc, RawReport.reported_at).where(RawReport.matched.is_(False))
    if raw_ids is not None:
        ids = list(raw_ids)
        if not ids:
            return 0
        query = query.where(RawReport.id.in_(ids))
    else:
        query = query.where(RawReport.account == account, RawReport.received_at > utcnow() - REMATCH_WINDOW)
    applied = 0
    raws = session.execute(query.order_by(RawReport.id).limit(20_000)).all()
    for start in range(0, len(raws), 500):
        applied += _apply(session, raws[start:start + 500])
    return applied


def _apply(session: Session, raws: Sequence[Row]) -> int:
    """Apply one batch of raw report rows to their messages; returns how many matched."""
    customs = [r.custom_id for r in raws if r.custom_id]
    pids = [r.provider_msg_id for r in raws if r.provider_msg_id and not r.custom_id]
    found = session.execute(
        select(Message.id, Message.job_id, Message.custom_id, Message.provider_msg_id, Message.status).where(
            or_(Message.custom_id.in_(customs or [""]), Message.provider_msg_id.in_(pids or [""]))
        )
    ).all()
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


def poll_reports(account: Account, settings: Settings) -> dict[str, int]:
    """Drain the account's report query until a short page, under a per-account lock."""
    provider = get_provider(account.provider)
    if provider is None:
        return {"fetched": 0, "matched": 0}
    if not provider.has_report_query or not account.poll_reports:
        # pushed reports only: nothing to fetch, but a push that came before its submission was recorded
        # (ihuyi pushes a stalled request's receipts before the retry learns its task_id) waits to be matched
        with session_scope() as session:
            return {"fetched": 0, "matched": match_reports(session, account=account.name)}
    lock = account_lock(account.name, "poll-reports", timeout_s=max(60.0, settings.http_read_timeout_s * 4))
    if not lock.acquire():
        return {"fetched": 0, "matched": 0, "locked": 1}
    fetched = matched = 0
    try:
        for _ in range(MAX_PAGES_PER_POLL):
            request = provider.build_report_query(account, utcnow())
            reports = provider.parse_reports(http_send(account.base_url, request,
                                                       read_timeout_s=settings.http_read_timeout_s))
            fetched += len(reports)
            matched += ingest(account, reports, "poll")
            lock.extend(30, replace_ttl=True)
            if len(reports) < provider.report_page_size:
                break
        with session_scope() as session:  # reports that came before their submission was recorded
            matched += match_reports(session, account=account.name)
    finally:
        try:
            lock.release()
        except Exception:  # expired meanwhile: another poller may hold it now; nothing to undo
            pass
    return {"fetched": fetched, "matched": matched}


def accounts_to_poll(accounts: Mapping[str, Account]) -> list[str]:
    """Names of accounts to poll: with a report query to drain, or pushed reports waiting for their match."""
    return [n for n, a in accounts.items() if get_provider(a.provider) is not None]
