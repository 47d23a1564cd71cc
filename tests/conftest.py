"""Test environment: real Redis (db 15), SQLite or PostgreSQL (MSGRELAY_TEST_DB), fast intervals.

Set before any msgrelay module reads its settings, so the test process, the simulator and the Celery worker
started by the e2e fixtures all share one configuration.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from datetime import datetime, timezone

TEST_DIR = Path(tempfile.mkdtemp(prefix="msgrelay-test-"))
TEST_DB = os.environ.get("MSGRELAY_TEST_DB", "sqlite")
PG_URL = os.environ.get("MSGRELAY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MSGRELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

(TEST_DIR / "prometheus").mkdir()
os.environ.update({
    "PROMETHEUS_MULTIPROC_DIR": str(TEST_DIR / "prometheus"),  # every test process counts metrics here
    "MSGRELAY_DATABASE_URL": PG_URL if TEST_DB == "postgresql" else f"sqlite:///{TEST_DIR / 'test.db'}",
    "MSGRELAY_BROKER_URL": REDIS_URL,
    "MSGRELAY_ACCOUNTS_FILE": str(TEST_DIR / "accounts.toml"),
    "MSGRELAY_VISIBILITY_TIMEOUT_S": "12",
    "MSGRELAY_HTTP_READ_TIMEOUT_S": "2",
    "MSGRELAY_RETRY_MAX": "12",
    "MSGRELAY_RETRY_BACKOFF_BASE_S": "0.1",
    "MSGRELAY_RETRY_BACKOFF_MAX_S": "1",
    "MSGRELAY_POLL_REPORTS_EVERY_S": "1",
    "MSGRELAY_POLL_BALANCES_EVERY_S": "30",
    "MSGRELAY_POLL_INBOUND_EVERY_S": "1",
    "MSGRELAY_SWEEP_EVERY_S": "1",
    "MSGRELAY_ACCOUNTS_RELOAD_S": "0.5",
    "MSGRELAY_STALE_PENDING_S": "4",
    "MSGRELAY_STALE_SENDING_S": "6",
    "MSGRELAY_REPORT_EXPIRY_S": "20",
})
os.environ.pop("MSGRELAY_API_TOKEN", None)


@pytest.fixture(scope="session")
def database() -> str:
    """A fresh schema built by the Alembic migrations (what `msgrelay db upgrade` runs)."""
    from sqlalchemy import text

    from models import get_engine
    from models.migrate import upgrade

    url = os.environ["MSGRELAY_DATABASE_URL"]
    if TEST_DB == "postgresql":
        with get_engine(url).begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade(url)
    return url


def zone_at(local_hour: int) -> str:
    """A fixed-offset zone in which it is now `local_hour` o'clock: how tests set a send window's clock."""
    offset = (local_hour - datetime.now(timezone.utc).hour) % 24
    offset = offset - 24 if offset > 11 else offset
    return f"Etc/GMT{-offset:+d}"  # the Etc zones count the other way round: Etc/GMT-8 is UTC+8
