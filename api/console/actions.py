"""The console's forms (POST): login and logout, and the operator actions, each CSRF-checked, done through the
same functions as the API (`msgrelay.operations`, `policy.suppressions`, `routes.view`), audited under the key's
name, and answered by a redirect back to the page with what happened."""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from api import access
from api.access import Principal
from api.console import session as sessions
from api.console.pages import User
from api.console.render import page
from api.jobs import enqueue
from models import Job, session_scope
from msgrelay import operations
from msgrelay.accounts import get_accounts
from msgrelay.routes.view import resume_account
from msgrelay.policy import suppressions
from models.policy import EVERY_ACCOUNT
from providers.errors import InvalidInput

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=255)]
Csrf = Annotated[str, Form(max_length=128)]


def _safe_next(target: str | None) -> str:
    """Only a console path of this site (never another host) is a place to go back to."""
    if not target or not target.startswith("/ui") or urlsplit(target).netloc or target.startswith("//"):
        return "/ui/jobs"
    return target


@router.get("/ui/login")
def login_form(request: Request, next: str | None = None):
    """The login page; with no token and no key configured (loopback only), it logs in as `local` at once."""
    if sessions.current(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    opened = sessions.open_without_token()
    if opened is not None:
        response = RedirectResponse(_safe_next(next), status_code=303)
        sessions.set_cookie(response, request, opened[0])
        return response
    return page(request, "login.html", None, next=_safe_next(next))


@router.post("/ui/login")
def login(request: Request, token: Annotated[str, Form(max_length=512)],
          next: Annotated[str, Form(max_length=2000)] = "/ui/jobs"):
    """Exchange a key's token for a session cookie (the token is not kept)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise HTTPException(status_code=403, detail="the login form must be sent from this console")
    opened = sessions.login(token.strip())
    if opened is None:
        return page(request, "login.html", None, status_code=401, next=_safe_next(next),
                    error="wrong token: give an API key's token or MSGRELAY_API_TOKEN")
    response = RedirectResponse(_safe_next(next), status_code=303)
    sessions.set_cookie(response, request, opened[0])
    return response


@router.post("/ui/logout")
def logout(request: Request, login: User, csrf: Csrf) -> Response:
    """End the session."""
    _check(request, login, csrf)
    sessions.logout(request)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/ui")
    return response


def _check(request: Request, login: sessions.Login, csrf: str, *, act: bool = False) -> None:
    """403 for a form without this session's CSRF token, or (`act`) from a key that may not act."""
    if not sessions.csrf_ok(request, login, csrf):
        raise HTTPException(status_code=403, detail="the form's CSRF token is missing or stale: reload the page")
    if act and not login.operates:
        raise HTTPException(status_code=403, detail=f"{login.principal.describe()} may not act: operators only")


def _done(back: str, what: Callable[[], str]) -> RedirectResponse:
    """Do it, and go back saying what happened (or why not)."""
    try:
        said, key = what(), "said"
    except InvalidInput as exc:
        said, key = f"{exc.field}: {exc.rule}", "error"
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}{key}={quote(said)}", status_code=303)


def _own_job(principal: Principal, job_id: int) -> None:
    """404 for no job, 403 for a job of another account."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise HTTPException(status_code=404, detail=f"no job {job_id}")
        if not access.can_see_job(principal, job.account, job.route):
            raise HTTPException(status_code=403, detail=f"job {job_id} is not of the key's accounts")


@router.post("/ui/jobs/{job_id}/{action}")
async def job_action(request: Request, job_id: int, action: str, login: User, csrf: Csrf) -> Response:
    """Pause, resume or cancel a job."""
    _check(request, login, csrf, act=True)
    by = login.principal.name
    acts = {"pause": lambda: operations.pause_job(job_id, by=by) or "paused",
            "resume": lambda: operations.resume_job(job_id, by=by, enqueue=enqueue) or "resumed",
            "cancel": lambda: f"cancelled: {operations.cancel_job(job_id, by=by):,} unsent messages rejected"}
    if action not in acts:
        raise HTTPException(status_code=404, detail=f"no action {action!r}: pause, resume or cancel")
    await run_in_threadpool(_own_job, login.principal, job_id)
    return await run_in_threadpool(_done, f"/ui/jobs/{job_id}", acts[action])


@router.post("/ui/suppressions")
async def suppress(request: Request, login: User, csrf: Csrf, mobile: Annotated[str, Form(max_length=32)],
                   scope: Annotated[str, Form(max_length=64)] = EVERY_ACCOUNT, reason: Text = "") -> Response:
    """Add a suppression."""
    _check(request, login, csrf, act=True)
    _scope_allowed(login.principal, scope)

    def add() -> str:
        row, new = suppressions.add(get_accounts(), mobile, scope=scope, reason=reason or None, source="console",
                                    by=login.principal.name)
        return f"{row['mobile']} suppressed ({row['scope']})" if new else f"{row['mobile']} was suppressed already"
    return await run_in_threadpool(_done, "/ui/suppressions", add)


@router.post("/ui/suppressions/remove")
async def unsuppress(request: Request, login: User, csrf: Csrf, mobile: Annotated[str, Form(max_length=32)],
                     scope: Annotated[str, Form(max_length=64)]) -> Response:
    """Lift a suppression."""
    _check(request, login, csrf, act=True)
    _scope_allowed(login.principal, scope)

    def remove() -> str:
        suppressions.remove(mobile, scope=scope, by=login.principal.name)
        return f"{mobile} no longer suppressed ({scope})"
    return await run_in_threadpool(_done, "/ui/suppressions", remove)


def _scope_allowed(principal: Principal, scope: str) -> None:
    """A key of some accounts changes only their suppressions (not `*`)."""
    if principal.accounts is not None and scope in ("", EVERY_ACCOUNT):
        raise HTTPException(status_code=403, detail=f"{principal.describe()} may not act on scope '*'")
    if scope not in ("", EVERY_ACCOUNT) and not access.can_see(principal, scope):
        raise HTTPException(status_code=403, detail=f"{principal.describe()} may not act on account '{scope}'")


@router.post("/ui/webhooks/{delivery_id}/retry")
async def retry(request: Request, delivery_id: int, login: User, csrf: Csrf) -> Response:
    """Send a dead or failing delivery again."""
    _check(request, login, csrf, act=True)
    return await run_in_threadpool(_done, "/ui/webhooks", lambda: (
        operations.retry_delivery(delivery_id, by=login.principal.name, jobs=access.own_jobs(login.principal))
        and f"delivery {delivery_id} retried"))


@router.post("/ui/accounts/{account}/resume")
async def resume(request: Request, account: str, login: User, csrf: Csrf) -> Response:
    """Lift an account's pause."""
    _check(request, login, csrf, act=True)
    if not access.can_see(login.principal, account):
        raise HTTPException(status_code=403, detail=f"{login.principal.describe()} may not act on '{account}'")
    return await run_in_threadpool(_done, "/ui/accounts", lambda: (
        f"{account} resumed" if resume_account(get_accounts(), account, by=login.principal.name)
        else f"{account} was not paused"))
