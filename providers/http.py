"""The one place msgrelay talks HTTP to a provider: a pooled session per thread, every ``requests`` exception
turned into one of ``providers.errors``. Provider modules never call it; the flow (``msgrelay``) does."""
from __future__ import annotations

import threading

import requests

from providers.base import HttpResponse, Request
from providers.errors import AmbiguousError, RateLimited, TransientError

_local = threading.local()
CONNECT_TIMEOUT_S = 5.0
DEFAULT_READ_TIMEOUT_S = 30.0


def _session() -> requests.Session:
    """One pooled session per thread (requests.Session is not thread-safe)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = session
    return session


def translate(exc: requests.RequestException, request: Request, read_timeout_s: float) -> Exception:
    """The error of ours that a ``requests`` exception stands for.

    A connect timeout or a refused/reset connection means nothing reached the provider (transient); a read
    timeout means the request went out and no answer came (ambiguous)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return TransientError("CONNECT_TIMEOUT", f"{request.path}: {type(exc).__name__}")
    if isinstance(exc, requests.exceptions.ReadTimeout) or "Read timed out" in str(exc):
        return AmbiguousError("READ_TIMEOUT", f"{request.path}: no answer in {read_timeout_s}s")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return TransientError("CONNECT_ERROR", f"{request.path}: {type(exc).__name__}")
    if isinstance(exc, requests.exceptions.Timeout):
        return AmbiguousError("READ_TIMEOUT", f"{request.path}: no answer in {read_timeout_s}s")
    return TransientError("HTTP_ERROR", f"{request.path}: {type(exc).__name__}")


def http_send(base_url: str, request: Request, *, read_timeout_s: float = DEFAULT_READ_TIMEOUT_S) -> HttpResponse:
    """Send `request` and return the answer; 429 is RateLimited, 5xx TransientError, and a failed exchange
    the error :func:`translate` names."""
    url = base_url.rstrip("/") + request.path
    try:
        resp = _session().request(
            request.method, url, data=request.form, json=request.json, headers=dict(request.headers),
            timeout=(CONNECT_TIMEOUT_S, read_timeout_s),
        )
    except requests.exceptions.RequestException as exc:
        raise translate(exc, request, read_timeout_s) from None
    if resp.status_code == 429:
        raise RateLimited("HTTP_429", request.path)
    if resp.status_code >= 500:
        raise TransientError(f"HTTP_{resp.status_code}", request.path)
    resp.encoding = resp.encoding or "utf-8"
    return HttpResponse(status=resp.status_code, text=resp.text, headers=dict(resp.headers))
