"""The one place msgrelay talks HTTP to a provider, every ``requests`` exception turned into one of ours.
Provider modules never call it; the flow (``msgrelay``) does.

A send goes out on a fresh connection (a session of its own, closed after it), so a failure after
the connection was made cannot be a stale pooled connection that never reached the provider: the provider
may have read the request, and the outcome is ambiguous. Only a failure to connect means "not sent". The flow
makes that connection (``SendConnection``) before it claims the chunk, so a worker lost in the TCP or TLS
handshake leaves the chunk unclaimed and free to go, where a worker lost after the claim leaves it in doubt. Queries
(reports, balances, inbound) change nothing at the provider, so every failure of theirs is transient, and
they keep their connections alive.
"""
from __future__ import annotations

import threading

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from providers.base import HttpResponse, Request
from providers.errors import AmbiguousError, ProviderError, RateLimited, TransientError

_local = threading.local()
CONNECT_TIMEOUT_S = 5.0
DEFAULT_READ_TIMEOUT_S = 30.0
#: failures that happen before a connection exists: nothing reached the provider
_NOT_CONNECTED = (NewConnectionError, ConnectTimeoutError)


def _query_session() -> requests.Session:
    """One pooled keep-alive session per thread for queries (requests.Session is not thread-safe)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = session
    return session


def _send_session() -> requests.Session:
    """A session of its own for one send, closed after it (about 20 µs): its connection is never reused."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _connected(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether the connection had been made when `exc` happened (refused or unreachable: it had not)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return not isinstance(reason, _NOT_CONNECTED)


def translate(exc: requests.RequestException, request: Request, read_timeout_s: float, *,
              sending: bool) -> ProviderError:
    """The error of ours that a ``requests`` exception stands for.

    Not connected (refused, connect timeout, TLS handshake, bad URL): transient, nothing was sent. On a send,
    anything after the connection was made (reset, closed without an answer, read timeout, truncated answer)
    is ambiguous: the provider may have the request. On a query every failure is transient."""
    where = f"{request.path}: {type(exc).__name__}"
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError,
                        requests.exceptions.ProxyError)):
        return TransientError("CONNECT_TIMEOUT" if isinstance(exc, requests.exceptions.Timeout) else "CONNECT_ERROR",
                              where)
    timed_out = isinstance(exc, requests.exceptions.Timeout) or "Read timed out" in str(exc)
    after_connect = timed_out or isinstance(exc, (requests.exceptions.ChunkedEncodingError,
                                                   requests.exceptions.ContentDecodingError)) or (
        isinstance(exc, requests.exceptions.ConnectionError) and _connected(exc))
    if timed_out:
        code, where = "READ_TIMEOUT", f"{request.path}: no answer in {read_timeout_s}s"
    elif isinstance(exc, requests.exceptions.ConnectionError):
        code = "CONNECTION_LOST" if after_connect else "CONNECT_ERROR"
    else:
        code = "ANSWER_LOST" if after_connect else "HTTP_ERROR"
    return (AmbiguousError if sending and after_connect else TransientError)(code, where)


class SendConnection:
    """A send's own connection, made (TCP and TLS) before its chunk is claimed: a worker lost while connecting
    leaves the chunk unclaimed, so what can leave a send in doubt is the write alone, not the round trips of the
    handshakes before it. A failure to connect is kept, not raised: nothing was sent, and the claim's own path
    handles it as before (a transient error of that try)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = _send_session()
        self.error: TransientError | None = None

    def open(self) -> SendConnection:
        """Connect to the provider's host now; a failure is kept as `error` (nothing was sent)."""
        url = self.base_url + "/"
        try:
            env = self.session.merge_environment_settings(url, {}, None, None, None)  # proxies, verify, cert
            prepared = self.session.prepare_request(requests.Request("POST", url))
            # the pool `send` will take its connection from: the same URL, TLS and proxy settings
            pool = self.session.get_adapter(url).get_connection_with_tls_context(
                prepared, env["verify"], proxies=env["proxies"], cert=env["cert"])
            conn = pool._get_conn()
            try:
                conn.timeout = CONNECT_TIMEOUT_S
                conn.connect()
            finally:
                pool._put_conn(conn)  # connected or not: a failed one connects again when used
        except Exception as exc:  # refused, unreachable, timed out, TLS refused: before any request
            code = "CONNECT_TIMEOUT" if "timed out" in str(exc) or isinstance(exc, TimeoutError) else "CONNECT_ERROR"
            self.error = TransientError(code, f"connect: {type(exc).__name__}")  # no URL: it may hold a password
        return self

    def send(self, request: Request, *, read_timeout_s: float = DEFAULT_READ_TIMEOUT_S) -> HttpResponse:
        """Send `request` on this connection (made again if the provider closed it since) and close it."""
        try:
            if self.error is not None:
                raise self.error
            return _exchange(self.session, self.base_url, request, read_timeout_s, sending=True)
        finally:
            self.session.close()

    def close(self) -> None:
        """Close the connection unused (the chunk was not sent)."""
        self.session.close()


def http_send(base_url: str, request: Request, *, sending: bool,
              read_timeout_s: float = DEFAULT_READ_TIMEOUT_S) -> HttpResponse:
    """Send `request` and return the answer; 429 is RateLimited, 5xx TransientError, and a failed exchange
    the error :func:`translate` names (`sending`: a send, whose failure after connecting is ambiguous)."""
    if sending:
        return SendConnection(base_url).send(request, read_timeout_s=read_timeout_s)
    return _exchange(_query_session(), base_url, request, read_timeout_s, sending=False)


def _exchange(session: requests.Session, base_url: str, request: Request, read_timeout_s: float, *,
              sending: bool) -> HttpResponse:
    """One request on `session` and its answer, every failure turned into one of ours."""
    url = base_url.rstrip("/") + request.path
    try:
        resp = session.request(
            request.method, url, data=request.form, json=request.json, headers=dict(request.headers),
            timeout=(CONNECT_TIMEOUT_S, read_timeout_s),
        )
    except requests.exceptions.RequestException as exc:
        raise translate(exc, request, read_timeout_s, sending=sending) from None
    if resp.status_code == 429:
        raise RateLimited("HTTP_429", request.path)
    if resp.status_code >= 500:
        raise TransientError(f"HTTP_{resp.status_code}", request.path)
    resp.encoding = resp.encoding or "utf-8"
    return HttpResponse(status=resp.status_code, text=resp.text, headers=dict(resp.headers))
