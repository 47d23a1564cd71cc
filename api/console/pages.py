"""The console's pages (GET): jobs, a job, accounts, inbound messages, suppressions, webhook deliveries, the
audit log; and the small JSON the pages' script polls for live progress."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from api import access
from api.console import queries
from api.console.chart import svg
from api.console.render import page
from api.console.session import Login, current
from models import Job, session_scope
from models.policy import EVERY_ACCOUNT
from models.statuses import DeliveryStatus, MessageStatus
from msgrelay import audit
from msgrelay.accounts import get_accounts
from msgrelay.inbound import list_inbound
from msgrelay.policy import suppressions
from msgrelay.webhooks import operations as deliveries

router = APIRouter(include_in_schema=False)
Name = Annotated[str | None, Query(max_length=64)]


class LoginNeeded(HTTPException):
    """No session: pages redirect to the login page, the live JSON answers 401."""

    def __init__(self) -> None:
        super().__init__(status_code=401, detail="log in to the console first")


def logged_in(request: Request) -> Login:
    """The request's login (LoginNeeded without one)."""
    login = current(request)
    if login is None:
        raise LoginNeeded()
    return login


User = Annotated[Login, Depends(logged_in)]


def reader(login: User) -> Login:
    """Viewers and operators read suppressions, deliveries and the audit log; producers do not (403)."""
    if not login.reads_operations:
        raise HTTPException(status_code=403, detail=f"{login.principal.describe()} may not read this page")
    return login


Reader = Annotated[Login, Depends(reader)]


def to_login(request: Request, _exc: LoginNeeded) -> Response:
    """A page asked without a session goes to the login page (and back after it); the live JSON gets a 401."""
    if request.url.path.startswith("/ui/live"):
        return JSONResponse(status_code=401, content={"detail": "log in to the console first"})
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/login?next={back}", status_code=303)


@router.get("/ui")
def home() -> RedirectResponse:
    return RedirectResponse("/ui/jobs", status_code=303)


@router.get("/ui/jobs")
def jobs(request: Request, login: User, status: Annotated[str | None, Query(max_length=16)] = None,
         account: Name = None, kind: Name = None, before: Annotated[int | None, Query(ge=1)] = None):
    """Jobs newest first with live progress bars, filtered by status, account (or route) and kind."""
    status = status if status in queries.JOB_FILTERS else None
    with session_scope() as session:
        rows, next_before = queries.jobs(session, login.principal, status=status, account=account or None,
                                         kind=kind or None, before=before)
        totals = queries.job_totals(session, login.principal)
        held = queries.held(session, login.principal) if before is None else []
        return page(request, "jobs.html", login, rows=rows, next_before=next_before, totals=totals, held=held,
                    filters={"status": status or "", "account": account or "", "kind": kind or ""},
                    statuses=queries.JOB_FILTERS,
                    accounts=[a for a in get_accounts() if access.can_see(login.principal, a)])


@router.get("/ui/jobs/{job_id}")
def job(request: Request, job_id: int, login: User,
        status: Annotated[MessageStatus | None, Query()] = None,
        after: Annotated[int, Query(ge=-1)] = -1):
    """One job: funnel, delivery over time, chunks per account, what it waits for, its messages, its actions."""
    with session_scope() as session:
        found = _job(session, login, job_id)
        if found is None:
            return page(request, "missing.html", login, status_code=404, what=f"job {job_id}")
        if not _mine(login, found):
            return page(request, "missing.html", login, status_code=403, what=f"job {job_id}", theirs=True)
        detail = queries.job_page(session, found, status=status.value if status else None, after=after)
        chart = svg(queries.chart_points(session, found), found.total)
        return page(request, "job.html", login, job=found, chart=chart, status=status.value if status else "",
                    statuses=[s.value for s in MessageStatus], **detail)


@router.get("/ui/jobs/{job_id}/chart")
def job_chart(job_id: int, login: User) -> Response:
    """The job's chart alone (the page's script swaps it in while the job runs)."""
    with session_scope() as session:
        found = _job(session, login, job_id)
        if found is None or not _mine(login, found):
            return Response(status_code=404 if found is None else 403)
        return Response(svg(queries.chart_points(session, found), found.total), media_type="image/svg+xml",
                        headers={"Cache-Control": "no-store"})


def _job(session, _login: Login, job_id: int) -> Job | None:
    """The job, or None."""
    return session.get(Job, job_id)


def _mine(login: Login, job: Job) -> bool:
    """True when the key may see the job (its account, or every account of its route)."""
    return access.can_see_job(login.principal, job.account, job.route)


@router.get("/ui/live/jobs")
def live_jobs(login: User, ids: Annotated[str, Query(max_length=2000, pattern=r"^[0-9,]*$")] = "") -> dict:
    """{id: status, counts, total, reason, waiting} of the listed jobs the key may see."""
    wanted = [int(i) for i in ids.split(",") if i][:200]
    with session_scope() as session:
        return {str(k): v for k, v in queries.live_jobs(session, login.principal, wanted).items()}


@router.get("/ui/live/accounts")
def live_accounts(login: User) -> dict:
    """Each visible account's send rate, balance warning and pause."""
    return {a["name"]: {"rate": a["rate"], "warning": a["warning"], "paused_reason": a["paused_reason"]}
            for a in queries.accounts(login.principal)}


@router.get("/ui/accounts")
def accounts(request: Request, login: User):
    """Accounts: send rate, rate limit, last balance with warnings, pauses, routes, sending policy."""
    return page(request, "accounts.html", login, accounts=queries.accounts(login.principal))


@router.get("/ui/inbound")
def inbound(request: Request, login: User, account: Name = None, offset: Annotated[int, Query(ge=0)] = 0):
    """Inbound messages (replies), newest first."""
    rows = list_inbound(account=account or None, limit=queries.PAGE, offset=offset,
                        accounts=access.visible_accounts(login.principal, account or None))
    return page(request, "inbound.html", login, rows=rows, offset=offset, account=account or "",
                more=len(rows) == queries.PAGE, page_size=queries.PAGE)


@router.get("/ui/suppressions")
def suppressions_page(request: Request, login: Reader, mobile: Annotated[str | None, Query(max_length=32)] = None,
                      offset: Annotated[int, Query(ge=0)] = 0):
    """The suppression list, with add and remove for operators."""
    mine = None if login.principal.accounts is None else [EVERY_ACCOUNT, *sorted(login.principal.accounts)]
    rows = suppressions.listed(mobile=mobile or None, limit=queries.PAGE, offset=offset, scopes=mine)
    scopes = ([EVERY_ACCOUNT] if login.principal.accounts is None else []) + [
        a for a in get_accounts() if access.can_see(login.principal, a)]
    return page(request, "suppressions.html", login, rows=rows, offset=offset, mobile=mobile or "",
                more=len(rows) == queries.PAGE, scopes=scopes, page_size=queries.PAGE)


@router.get("/ui/webhooks")
def webhooks(request: Request, login: Reader, status: DeliveryStatus | None = None,
             offset: Annotated[int, Query(ge=0)] = 0):
    """Webhook deliveries, newest first, with retry for dead and failing ones."""
    with session_scope() as session:
        rows = deliveries.list_deliveries(session, status=status, limit=queries.PAGE, offset=offset,
                                          jobs=access.own_jobs(login.principal))
    return page(request, "webhooks.html", login, rows=rows, status=status.value if status else "", offset=offset,
                more=len(rows) == queries.PAGE, statuses=[s.value for s in DeliveryStatus], page_size=queries.PAGE)


@router.get("/ui/audit")
def audit_page(request: Request, login: Reader, action: Annotated[str | None, Query(max_length=32)] = None,
               key: Name = None, offset: Annotated[int, Query(ge=0)] = 0):
    """The audit log of operator actions, newest first."""
    with session_scope() as session:
        rows = audit.list_audit(session, limit=queries.PAGE, offset=offset, action=action or None, key=key or None)
    return page(request, "audit.html", login, rows=rows, action=action or "", key=key or "", offset=offset,
                more=len(rows) == queries.PAGE, actions=[a.value for a in audit.Action], page_size=queries.PAGE)
