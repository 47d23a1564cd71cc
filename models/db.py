"""Engine and sessions: SQLite (WAL, busy timeout) as the embedded default, PostgreSQL in production."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine


class DatabaseSettings(BaseSettings):
    """The database part of the settings (MSGRELAY_DATABASE_URL, `.env` honoured); `msgrelay.settings` extends it."""

    model_config = SettingsConfigDict(env_prefix="MSGRELAY_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///msgrelay.db"


@lru_cache(maxsize=1)
def default_database_url() -> str:
    """The configured database URL, read once per process."""
    return DatabaseSettings().database_url


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
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session committed on success, rolled back on error; objects stay readable after commit."""
    with Session(get_engine(url), expire_on_commit=False) as session:
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
