"""A job's webhook receiver: `callback_url` checked at submit, or the default `MSGRELAY_WEBHOOK_URL`, stored as
one `webhook_receiver` row per URL that the job points at (the triggers emit events only for such jobs)."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from models import WebhookReceiver, is_sqlite, utcnow
from models.webhooks import URL_MAX_CHARS
from providers.errors import InvalidInput


def check_url(field: str, url: str) -> str:
    """`url` when it is an absolute http(s) URL with a host; InvalidInput naming `field` otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(field, "must be an http:// or https:// URL")
    url = url.strip()
    if len(url) > URL_MAX_CHARS:
        raise InvalidInput(field, f"must be at most {URL_MAX_CHARS} characters, got {len(url)}")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput(field, "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number in range)
    except ValueError as exc:
        raise InvalidInput(field, f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(field, f"must be an http:// or https:// URL, got scheme {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise InvalidInput(field, "must name a host, e.g. https://example.com/msgrelay-events")
    return url


#: what a hidden part of a receiver's URL shows as
HIDDEN = "***"


def shown_url(url: str) -> str:
    """`url` as operators see it (API, CLI, console): the password and every query value hidden, since a producer
    may put its receiver's token there; scheme, host, port and path stay, so deliveries can still be told apart."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return HIDDEN
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{port}" if port is not None else "")
    if parts.username is not None:
        netloc = parts.username + (f":{HIDDEN}" if parts.password is not None else "") + "@" + netloc
    query = urlencode([(key, HIDDEN) for key, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    if parts.query and not query:
        query = HIDDEN  # a query that is not key=value pairs is hidden whole
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def receiver_url(callback_url: str | None, default_url: str | None) -> str | None:
    """The URL a job's events go to: its own `callback_url`, else the default, else None (no events)."""
    if callback_url is not None:
        return check_url("callback_url", callback_url)
    return check_url("MSGRELAY_WEBHOOK_URL", default_url) if default_url else None


def receiver_id(session: Session, url: str) -> int:
    """The id of `url`'s receiver row, created on first use (safe against a concurrent submit)."""
    insert = sqlite_insert if is_sqlite(session.get_bind()) else pg_insert
    session.execute(insert(WebhookReceiver).values(url=url, created_at=utcnow()).on_conflict_do_nothing(index_elements=["url"]))
    return session.scalars(select(WebhookReceiver.id).where(WebhookReceiver.url == url)).one()
