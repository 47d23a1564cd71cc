"""Every PostgreSQL connection msgrelay opens writes its evicted pages as it goes (`backend_flush_after`), so the
kernel never holds hundreds of megabytes for one writeback burst that stalls a verification call's commit."""
from __future__ import annotations

import psycopg
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.engine import make_url

from models import get_engine
from models.db import DatabaseSettings, database_settings
from tests.conftest import PG_URL, TEST_DB

postgresql_only = pytest.mark.skipif(TEST_DB != "postgresql", reason="a PostgreSQL setting")


def server_default() -> str:
    """The server's own `backend_flush_after`, as a plain connection sees it."""
    url = make_url(PG_URL)
    with psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database) as conn:
        return conn.execute("SHOW backend_flush_after").fetchone()[0]


def shown(monkeypatch, value: str | None) -> tuple[str, str]:
    """`backend_flush_after` on a new engine's connection, first and after the pool took it back and handed it
    out again (its rollback on check-in must not undo the setting), with MSGRELAY_PG_BACKEND_FLUSH_AFTER set to
    `value` (None: unset)."""
    if value is None:
        monkeypatch.delenv("MSGRELAY_PG_BACKEND_FLUSH_AFTER", raising=False)
    else:
        monkeypatch.setenv("MSGRELAY_PG_BACKEND_FLUSH_AFTER", value)
    database_settings.cache_clear()
    engine = get_engine.__wrapped__(PG_URL)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SHOW backend_flush_after")).scalar()
            conn.execute(text("SELECT 1"))
            conn.rollback()
        with engine.connect() as conn:
            again = conn.execute(text("SHOW backend_flush_after")).scalar()
        return first, again
    finally:
        engine.dispose()
        database_settings.cache_clear()


@postgresql_only
@pytest.mark.parametrize("value, expected", [
    (None, "256kB"),  # the default
    ("1MB", "1MB"),
    ("64", "512kB"),  # a bare number counts 8kB pages, as PostgreSQL's own does
    ("0", "0"),  # off, whatever the server says
])
def test_each_connection_flushes_its_evicted_pages_as_configured(monkeypatch, value, expected):
    assert shown(monkeypatch, value) == (expected, expected)


@postgresql_only
def test_an_empty_setting_leaves_the_servers_own(monkeypatch):
    assert shown(monkeypatch, "") == (server_default(),) * 2


@pytest.mark.parametrize("value, rule", [
    ("fast", "must be a size such as 256kB or 1MB"),
    ("256 kB", "must be a size such as 256kB or 1MB"),
    ("-8kB", "must be a size such as 256kB or 1MB"),
    ("1GB", "must be a size such as 256kB or 1MB"),
    ("3MB", "must be at most 2MB"),
    ("2049kB", "must be at most 2MB"),
    ("257", "must be at most 2MB"),
])
def test_a_bad_setting_is_refused_naming_it_and_the_rule(monkeypatch, value, rule):
    monkeypatch.setenv("MSGRELAY_PG_BACKEND_FLUSH_AFTER", value)
    with pytest.raises(ValidationError) as caught:
        DatabaseSettings()
    assert "pg_backend_flush_after" in str(caught.value) and rule in str(caught.value)


def test_sqlite_takes_no_postgresql_setting(tmp_path):
    engine = get_engine.__wrapped__(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
