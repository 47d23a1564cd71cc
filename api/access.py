"""Who is asking, and what they may do (DESIGN §9 "API keys"): every rule of roles and accounts is here.

A request's bearer token names a `Principal`: MSGRELAY_API_TOKEN is the operator `api-token` of every account; an
`[api_keys.NAME]` of accounts.toml whose `token_sha256` is the token's SHA-256 is NAME, with its role and accounts;
with neither configured, the API listens on loopback only and everyone is the operator `local`. Otherwise a
missing or wrong token is 401 (the Guard answers it before the body is read).

Roles: a viewer reads (GET) only; a producer submits jobs and reads its accounts' jobs, balances, inbound messages,
templates and routes; an operator may also pause, resume and cancel jobs, change suppressions, retry webhook
deliveries, resume accounts and read the audit log. A key's `accounts` bound all of it: a job of another account
is 403 for reads and actions alike (and absent from lists); naming another account in a request (a job's account
or route, a suppression's scope, an account to resume) is 403 naming it.
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ColumnElement, and_, false, or_, true

from models import Job
from msgrelay.accounts import Role, api_keys_of, get_accounts, routes_of
from msgrelay.settings import get_settings

UNAUTHORIZED = "missing or wrong bearer token"
#: who MSGRELAY_API_TOKEN is, and who everyone is when no token and no key is configured (loopback only)
API_TOKEN_NAME = "api-token"
LOCAL_NAME = "local"
#: the methods a viewer may use
READING = frozenset({"GET", "HEAD"})
MAY = {Role.VIEWER: "read (GET) only",
       Role.PRODUCER: "submit jobs and read its accounts' jobs, balances, inbound messages, templates and routes",
       Role.OPERATOR: "read, submit and operate (pause, resume, cancel, suppressions, webhook retries)"}

_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Principal:
    """Who a request is from: a key's name, its role, and its accounts (None: every account)."""

    name: str
    role: Role
    accounts: frozenset[str] | None = None

    def describe(self) -> str:
        """`producer key 'p' (accounts voice)`: for refusals (never the token)."""
        scope = "every account" if self.accounts is None else "accounts " + ", ".join(sorted(self.accounts))
        return f"{self.role.value} key '{self.name}' ({scope})"


def _token(authorization: bytes | str | None) -> bytes | None:
    """The token of `Bearer <token>` as bytes (any header, ASCII or not, is just a token), or None."""
    if authorization is None:
        return None
    raw = authorization.encode("utf-8", "surrogateescape") if isinstance(authorization, str) else authorization
    scheme, _, given = raw.strip().partition(b" ")
    return given.strip() if scheme.lower() == b"bearer" else None


def principal_of(authorization: bytes | str | None) -> Principal | None:
    """The principal of an Authorization header, or None when it must be refused (401). Reads the accounts file
    (ConfigError when it is broken). Compares in constant time; never logs or keeps the token."""
    token = get_settings().api_token
    keys = api_keys_of(get_accounts())
    if token is None and not keys:
        return Principal(LOCAL_NAME, Role.OPERATOR)
    given = _token(authorization)
    if given is None:
        return None
    found = None
    if token is not None and secrets.compare_digest(given, token.get_secret_value().encode("utf-8", "surrogateescape")):
        found = Principal(API_TOKEN_NAME, Role.OPERATOR)
    digest = hashlib.sha256(given).hexdigest()
    for key in keys.values():  # every key is compared: how long it takes says nothing of which one matched
        if secrets.compare_digest(digest, key.token_sha256) and found is None:
            found = Principal(key.name, key.role, key.accounts)
    return found


def refused_method(principal: Principal, method: str) -> str | None:
    """Why a viewer may not use `method` (None when it may): checked before the body is read."""
    if principal.role == Role.VIEWER and method.upper() not in READING:
        return f"{principal.describe()} may {MAY[Role.VIEWER]}; {method.upper()} needs a producer or operator key"
    return None


def current(request: Request, _creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
    """The request's principal (401 without one, 403 for a viewer's write); the Guard found it already and left
    it in the request's state, and this documents the bearer scheme in OpenAPI."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raw = next((v for k, v in request.scope.get("headers", ()) if k == b"authorization"), None)
        principal = principal_of(raw)  # the header's bytes, as the Guard reads them
    if principal is None:
        raise HTTPException(status_code=401, detail=UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    if (why := refused_method(principal, request.method)) is not None:
        raise HTTPException(status_code=403, detail=why)
    return principal


def require(*roles: Role):
    """A dependency giving the principal when its role is one of `roles`; 403 naming its role, what it may do and
    the key the request needs otherwise."""
    def dependency(request: Request, principal: Principal = Depends(current)) -> Principal:
        if principal.role not in roles:
            raise HTTPException(status_code=403, detail=(
                f"{principal.describe()} may {MAY[principal.role]}; {request.method} {request.url.path} needs "
                f"a key of role {' or '.join(r.value for r in roles)}"))
        return principal
    return dependency


#: operator actions: pause, resume, cancel, suppression changes, webhook retries, account resumes
operator = require(Role.OPERATOR)
#: what producers may not read: suppressions, webhook deliveries, the audit log
reader = require(Role.VIEWER, Role.OPERATOR)


def can_see(principal: Principal, account: str | None) -> bool:
    """True when the principal's accounts include `account`."""
    return principal.accounts is None or account in principal.accounts


def route_accounts(route: str) -> tuple[str, ...] | None:
    """The accounts of a configured route (None: no such route)."""
    found = routes_of(get_accounts()).get(route)
    return found.accounts if found is not None else None


def can_see_job(principal: Principal, account: str, route: str | None) -> bool:
    """A job is the principal's when its account is (a route job: when every account of its route is)."""
    if principal.accounts is None:
        return True
    if route is None:
        return account in principal.accounts
    accounts = route_accounts(route)
    return accounts is not None and set(accounts) <= principal.accounts


def jobs_visible(principal: Principal) -> ColumnElement[bool]:
    """The SQL condition of `can_see_job`, for listing jobs."""
    if principal.accounts is None:
        return true()
    mine = sorted(principal.accounts)
    routes = sorted(name for name, r in routes_of(get_accounts()).items() if set(r.accounts) <= principal.accounts)
    return or_(and_(Job.route.is_(None), Job.account.in_(mine)), Job.route.in_(routes) if routes else false())


def own_jobs(principal: Principal) -> ColumnElement[bool] | None:
    """`jobs_visible`, or None for a key of every account (nothing to narrow): what webhook deliveries are
    narrowed to (a key of some accounts sees deliveries to the receivers of its jobs only)."""
    return None if principal.accounts is None else jobs_visible(principal)


def forbid(principal: Principal, what: str) -> HTTPException:
    """403 naming what the principal may not touch."""
    return HTTPException(status_code=403, detail=f"{principal.describe()} may not act on {what}")


def check_accounts(principal: Principal, accounts: Iterable[str]) -> None:
    """403 naming the first account the principal may not act on."""
    for account in accounts:
        if not can_see(principal, account):
            raise forbid(principal, f"account '{account}'")


def check_submit(principal: Principal, *, account: str | None, route: str | None) -> None:
    """A job's account, or every account of its route, must be the principal's (403 naming the one that is not;
    an unknown route is left to the submission's own 422)."""
    if principal.accounts is None:
        return
    if route is not None:
        accounts = route_accounts(route)
        if accounts is not None and not set(accounts) <= principal.accounts:
            outside = ", ".join(a for a in accounts if a not in principal.accounts)
            raise forbid(principal, f"route '{route}' (its accounts {outside} are not the key's)")
        return
    check_accounts(principal, [account or ""])


def visible_accounts(principal: Principal, account: str | None = None) -> frozenset[str] | None:
    """The accounts a listing may show: None (every one) or a set; naming an account outside gives nothing."""
    if principal.accounts is None:
        return None
    return principal.accounts if account is None or account in principal.accounts else frozenset()
