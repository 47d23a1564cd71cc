"""What the console's pages show, read with the same bounds the API has (a key sees its accounts' jobs only) and
with no scan that grows with a job's size: job counts come from the counters, chunks through their job index,
messages a page at a time along (job, seq), a chart from the progress notes."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from api import access
from api.access import Principal
from models import AccountPause, Chunk, Job, Message, session_scope, utcnow
from models.counts import counts_by_job
from models.statuses import JobStatus, MessageStatus as S
from msgrelay import progress, send_rate
from msgrelay.accounts import get_accounts, routes_of
from msgrelay.jobs import view_job
from msgrelay.routes.view import last_balances
from msgrelay.settings import get_settings

PAGE = 50
#: the job list's status filter: a job status, or `waiting` (running, held by a send window)
WAITING = "waiting"
JOB_FILTERS = (*[s.value for s in JobStatus], WAITING)


@dataclass(frozen=True)
class JobRow:
    """One line of the job list."""

    job: Job
    counts: dict[str, int]

    def live(self) -> dict[str, Any]:
        """What the list's script refreshes."""
        return {"status": self.job.status, "counts": self.counts, "total": self.job.total,
                "reason": self.job.reason, "waiting": self.job.waiting if self.job.waiting_until else None}


def _visible(principal: Principal):
    return select(Job).where(access.jobs_visible(principal))


def jobs(session: Session, principal: Principal, *, status: str | None = None, account: str | None = None,
         kind: str | None = None, before: int | None = None) -> tuple[list[JobRow], int | None]:
    """A page of jobs, newest first (keyset by id, so page 200 costs what page 1 does), and the next page's
    `before`."""
    query = _visible(principal)
    if status == WAITING:
        query = query.where(Job.status == JobStatus.RUNNING, Job.waiting_until.is_not(None))
    elif status:
        query = query.where(Job.status == status)
    if account:
        query = query.where((Job.account == account) | (Job.route == account))
    if kind:
        query = query.where(Job.kind == kind)
    if before:
        query = query.where(Job.id < before)
    found = list(session.scalars(query.order_by(Job.id.desc()).limit(PAGE + 1)))
    page, more = found[:PAGE], len(found) > PAGE
    counts = counts_by_job(session, [j.id for j in page])
    return [JobRow(j, counts[j.id]) for j in page], (page[-1].id if more else None)


def live_jobs(session: Session, principal: Principal, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The refreshed state of the listed jobs the principal may see."""
    found = list(session.scalars(_visible(principal).where(Job.id.in_(ids))))
    counts = counts_by_job(session, [j.id for j in found])
    return {j.id: JobRow(j, counts[j.id]).live() for j in found}


def job_totals(session: Session, principal: Principal) -> dict[str, int]:
    """Jobs per status (of the key's accounts), and how many running jobs wait for a send window."""
    totals = {s.value: 0 for s in JobStatus}
    for status, n in session.execute(select(Job.status, func.count()).where(access.jobs_visible(principal))
                                     .group_by(Job.status)):
        totals[status] = n
    totals[WAITING] = session.scalar(select(func.count()).select_from(Job).where(
        access.jobs_visible(principal), Job.status == JobStatus.RUNNING, Job.waiting_until.is_not(None))) or 0
    return totals


def held(session: Session, principal: Principal) -> list[Job]:
    """Paused jobs and jobs waiting for a send window, newest first (at most a page): what needs a look."""
    return list(session.scalars(_visible(principal).where(
        (Job.status == JobStatus.PAUSED) | ((Job.status == JobStatus.RUNNING) & Job.waiting_until.is_not(None)))
        .order_by(Job.id.desc()).limit(PAGE)))


def job_page(session: Session, job: Job, *, status: str | None = None, after: int = -1) -> dict[str, Any]:
    """Everything the job page shows but its chart."""
    view = view_job(session, job.id).as_dict()
    chunks = [{"account": account or (job.account if job.route is None else "(not yet assigned)"), "status": st,
               "chunks": n, "recipients": int(r or 0)}
              for account, st, n, r in session.execute(
                  select(Chunk.account, Chunk.status, func.count(), func.sum(Chunk.hi - Chunk.lo))
                  .where(Chunk.job_id == job.id).group_by(Chunk.account, Chunk.status)
                  .order_by(Chunk.account, Chunk.status))]
    query = select(Message).where(Message.job_id == job.id, Message.seq > after)
    if status:
        query = query.where(Message.status == status)
    messages = list(session.scalars(query.order_by(Message.seq).limit(PAGE + 1)))
    return {"view": view, "funnel": funnel(view["counts"], view["total"]), "chunks": chunks,
            "messages": messages[:PAGE], "next_after": messages[PAGE - 1].seq if len(messages) > PAGE else None,
            "send_at": job.send_at, "finished_at": job.finished_at, "content": job.content}


def funnel(counts: dict[str, int], total: int) -> list[tuple[str, int]]:
    """queued → handed to the provider → reported → delivered; rejected and unknown stand apart."""
    reported = counts[S.DELIVERED] + counts[S.FAILED] + counts[S.EXPIRED]
    return [("recipients", total), ("handed to the provider", reported + counts[S.SUBMITTED]),
            ("reported", reported), ("delivered", counts[S.DELIVERED])]


def chart_points(session: Session, job: Job):
    """The job's progress notes, ending with its counters now."""
    return progress.series(session, job, counts_by_job(session, [job.id])[job.id])


def accounts(principal: Principal) -> list[dict[str, Any]]:
    """Every account the key may see: provider, rate limit and send rate, last balance with its warning, pause."""
    configured = get_accounts()
    names = [n for n in configured if access.can_see(principal, n)]
    balances = last_balances(configured, names)
    rates = send_rate.rates(names)
    with session_scope() as session:
        pauses = {p.account: p for p in session.scalars(select(AccountPause).where(AccountPause.account.in_(names)))}
    member = {}
    for route in routes_of(configured).values():
        for name in route.accounts:
            member.setdefault(name, []).append(route.name)
    stale_after = timedelta(seconds=3 * get_settings().poll_balances_every_s)
    out = []
    for name in names:
        account, balance, pause = configured[name], balances.get(name), pauses.get(name)
        out.append({"name": name, "provider": account.provider, "rate_limit": account.rate_limit,
                    "rate": rates.get(name, {"per_s": 0.0, "last_minute": 0.0}),
                    "balance": balance, "warning": balance_warning(account, balance, stale_after),
                    "paused_reason": pause.reason if pause else None,
                    "paused_since": pause.paused_at if pause else None,
                    "routes": member.get(name, []), "send_window": account.send_window,
                    "send_windows": account.send_windows, "frequency_cap": account.frequency_cap,
                    "timezone": account.timezone})
    return out


def balance_warning(account: Any, balance: dict | None, stale_after: timedelta) -> str | None:
    """`empty`, `low` (at or below the account's `low_balance`), `stale` (not polled for three periods), or None."""
    if balance is None:
        return None
    value = float(balance["value"])
    if value <= 0:
        return "empty"
    if account.low_balance is not None and value <= account.low_balance:
        return f"low (at or below {account.low_balance:g})"
    if utcnow() - datetime.fromisoformat(balance["taken_at"]) > stale_after:
        return "stale"
    return None
