"""Engine and sessions: SQLite (WAL, busy timeout) as the embedded default, PostgreSQL in production."""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from select import POLLERR, POLLHUP, POLLIN, poll
from typing import Any

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session, create_engine

from models.backend_priority import share_raised_priority


class DatabaseSettings(BaseSettings):
    """The database part of the settings (MSGRELAY_DATABASE_URL, `.env` honoured); `msgrelay.settings` extends it."""

    model_config = SettingsConfigDict(env_prefix="MSGRELAY_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///msgrelay.db"
    #: PostgreSQL's `backend_flush_after` for every connection msgrelay opens ("" leaves the server's own): each
    #: backend asks the kernel to write the pages it evicts as it goes, instead of leaving hundreds of megabytes
    #: dirty for a writeback burst that stalls every commit's WAL flush (docs/DESIGN-NOTES.md, "Dirty pages")
    pg_backend_flush_after: str = "256kB"

    @field_validator("pg_backend_flush_after")
    @classmethod
    def _flush_size(cls, value: str) -> str:
        """A size PostgreSQL takes for `backend_flush_after`: 0 (off) to 2MB, or empty for the server's own."""
        value = value.strip()
        if not value:
            return value
        match = re.fullmatch(r"(\d{1,7})(kB|MB)?", value)
        if match is None:
            raise ValueError("must be a size such as 256kB or 1MB, 0 (off), or empty for the server's own setting")
        kb = int(match[1]) * {None: 8, "kB": 1, "MB": 1024}[match[2]]  # a bare number counts 8kB pages
        if kb > MAX_FLUSH_AFTER_KB:
            raise ValueError("must be at most 2MB (PostgreSQL's limit)")
        return value


#: PostgreSQL's largest `backend_flush_after`
MAX_FLUSH_AFTER_KB = 2048


@lru_cache(maxsize=1)
def database_settings() -> DatabaseSettings:
    """The database settings, read once per process."""
    return DatabaseSettings()


def default_database_url() -> str:
    """The configured database URL, read once per process."""
    return database_settings().database_url


def is_sqlite(engine: Engine) -> bool:
    """True for the embedded database."""
    return engine.dialect.name == "sqlite"


def skip_locked(session: Any, query: Any) -> Any:
    """`query` FOR UPDATE SKIP LOCKED on PostgreSQL, so two sweepers never claim one row; SQLite has one writer."""
    return query if is_sqlite(session.get_bind()) else query.with_for_update(skip_locked=True)


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    """One engine per URL per process."""
    url = url or default_database_url()
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # WAL + NORMAL: concurrent readers, one writer (DESIGN §7.8)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    engine = create_engine(url, pool_size=5, max_overflow=5)
    ping_when_in_doubt(engine)
    flush_as_it_goes(engine, database_settings().pg_backend_flush_after)
    share_raised_priority(engine)
    return engine


def flush_as_it_goes(engine: Engine, flush_after: str) -> None:
    """Give each new connection PostgreSQL's `backend_flush_after` (nothing for ""). Set by a statement, not a
    startup option, so that a pooler that refuses startup options (PgBouncer) still connects; committed, so that
    the pool's rollback on check-in keeps it."""
    if not flush_after:
        return

    @event.listens_for(engine, "connect")
    def _flush_after(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("SELECT set_config('backend_flush_after', %s, false)", (flush_after,))
        dbapi_conn.commit()


#: a pooled connection idle this long is pinged before use even when nothing says it is gone (a silent network)
PING_AFTER_IDLE_S = 30.0


def ping_when_in_doubt(engine: Engine) -> None:
    """Ping a pooled connection before use only when it may be gone: the server wrote to it while it was idle (a
    terminated backend says so before it closes), or it has been idle PING_AFTER_IDLE_S. SQLAlchemy's pre-ping
    costs a round trip on every checkout: a verification call makes two, each a wait for a core under load."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")  # None: a new connection, not yet used
        if since is None or (time.monotonic() - since < PING_AFTER_IDLE_S and not _server_spoke(dbapi_conn)):
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool replaces the connection (and tries once more)
            raise DisconnectionError(f"a pooled connection failed its ping: {type(exc).__name__}") from exc


def _server_spoke(dbapi_conn: Any) -> bool:
    """Whether an idle connection's socket has something to read (or is closed): nothing is expected on it."""
    try:
        poller = poll()
        poller.register(dbapi_conn.fileno(), POLLIN | POLLERR | POLLHUP)
        return bool(poller.poll(0))
    except Exception:  # closed, or no socket to look at: let the ping decide
        return True


@lru_cache(maxsize=8)
def _autocommit_engine(url: str | None) -> Engine:
    """`get_engine(url)` (its pool) with every statement committing by itself."""
    return get_engine(url).execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def session_scope(url: str | None = None, *, autocommit: bool = False) -> Iterator[Session]:
    """A session committed on success, rolled back on error; objects stay readable after commit. `autocommit`:
    each statement commits by itself, with no BEGIN and COMMIT round trips: only for work that is one write."""
    with Session(_autocommit_engine(url) if autocommit else get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def ping(url: str | None = None) -> None:
    """Raise when the database cannot be reached (a poll must not fetch what it could not store)."""
    from sqlalchemy import text

    with get_engine(url).connect() as conn:
        conn.execute(text("SELECT 1"))
