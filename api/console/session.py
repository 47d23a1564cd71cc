"""Console logins: a key's token is given once, at login, and exchanged for a random session id kept in an
HttpOnly, SameSite=Strict cookie; Redis holds the session under the id's SHA-256 (the key's name, its token's
fingerprint and the session's CSRF token), so neither the token nor a usable id is stored anywhere.

Every request reads the key again from the accounts file as it is now: a key removed, or given a new token,
ends its sessions at once, and a changed role or account list applies to the next click.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from fastapi import Request
from starlette.responses import Response

from api.access import API_TOKEN_NAME, LOCAL_NAME, Principal, principal_of
from msgrelay.accounts import Role, api_keys_of, get_accounts
from msgrelay.limits import get_redis
from msgrelay.settings import get_settings

COOKIE = "msgrelay_console"
#: a session ends after this long without a click
IDLE_S = 8 * 3600
_PREFIX = "msgrelay:ui:session:"


@dataclass(frozen=True)
class Login:
    """A logged-in console user: who, and the CSRF token its forms carry."""

    principal: Principal
    csrf: str

    @property
    def operates(self) -> bool:
        """True when the key may pause, resume, cancel, change suppressions and retry deliveries."""
        return self.principal.role == Role.OPERATOR

    @property
    def reads_operations(self) -> bool:
        """True when the key may read suppressions, webhook deliveries and the audit log (not a producer)."""
        return self.principal.role in (Role.VIEWER, Role.OPERATOR)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _fingerprint(principal: Principal, token: str | None) -> str:
    """What must still hold for a session of `principal` to stay valid: its key's token hash (never the token)."""
    if principal.name == LOCAL_NAME:
        return LOCAL_NAME
    return _digest(token or "")


def login(token: str) -> tuple[str, Login] | None:
    """A new session for the key whose token this is: (cookie value, login), or None for a wrong token."""
    principal = principal_of(f"Bearer {token}" if token else None)
    if principal is None:
        return None
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    data = {"key": principal.name, "fingerprint": _fingerprint(principal, token), "csrf": csrf}
    get_redis().set(_PREFIX + _digest(sid), json.dumps(data), ex=IDLE_S)
    return sid, Login(principal, csrf)


def open_without_token() -> tuple[str, Login] | None:
    """With no token and no key configured (the API listens on loopback only), everyone is the local operator."""
    return login("") if principal_of(None) is not None else None


def current(request: Request) -> Login | None:
    """The request's login, or None (no cookie, expired, or its key is gone or has a new token)."""
    sid = request.cookies.get(COOKIE)
    if not sid or len(sid) > 128:
        return None
    key = _PREFIX + _digest(sid)
    client = get_redis()
    raw = client.get(key)
    if raw is None:
        return None
    data = json.loads(raw)
    principal = _principal(data["key"], data["fingerprint"])
    if principal is None:
        client.delete(key)
        return None
    client.expire(key, IDLE_S)
    return Login(principal, data["csrf"])


def _principal(name: str, fingerprint: str) -> Principal | None:
    """The principal a session stands for, as the accounts file and settings say now."""
    if name == LOCAL_NAME:
        return principal_of(None)
    if name == API_TOKEN_NAME:
        token = get_settings().api_token
        ok = token is not None and secrets.compare_digest(_digest(token.get_secret_value()), fingerprint)
        return Principal(API_TOKEN_NAME, Role.OPERATOR) if ok else None
    key = api_keys_of(get_accounts()).get(name)
    if key is None or not secrets.compare_digest(key.token_sha256, fingerprint):
        return None
    return Principal(key.name, key.role, key.accounts)


def logout(request: Request) -> None:
    """End the request's session."""
    if sid := request.cookies.get(COOKIE):
        get_redis().delete(_PREFIX + _digest(sid))


def set_cookie(response: Response, request: Request, sid: str) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, the console's path only, Secure over https."""
    response.set_cookie(COOKIE, sid, max_age=IDLE_S, path="/ui", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def csrf_ok(request: Request, login: Login, given: str | None) -> bool:
    """An action's form carries the session's CSRF token, and its Origin (when sent) is this host."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        return False
    return given is not None and secrets.compare_digest(given.encode(), login.csrf.encode())
