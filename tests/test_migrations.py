"""`msgrelay db upgrade` builds exactly the schema the models declare, on SQLite and PostgreSQL."""
from __future__ import annotations

import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import models.tables  # noqa: F401
import pytest
from models import get_engine

pytestmark = pytest.mark.db


def test_migrations_match_the_models(database):
    with get_engine(database).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_lookup_indexes_exist(database):
    insp = inspect(get_engine(database))
    names = {ix["name"] for ix in insp.get_indexes("message")}
    assert {"ix_message_found_by_mobile", "ix_message_job_seq"} <= names
    assert "ix_message_mobile" not in names  # an entry for every message: migration 0015 made it partial
    assert "ix_message_provider_msg_id" not in names  # the send's answer sets it: migration 0012
    uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("message")}
    uniques |= {tuple(ix["column_names"]) for ix in insp.get_indexes("message") if ix["unique"]}
    assert ("custom_id",) in uniques


def test_no_index_covers_what_a_send_answer_or_a_report_changes(database):
    """A send's answer and a report's UPDATE must stay HOT updates on PostgreSQL (no index entry written): no
    index may name a column they change; raw reports keep an index entry only while unmatched."""
    insp = inspect(get_engine(database))
    indexed = {c for ix in insp.get_indexes("message") for c in ix["column_names"]}
    indexed |= {c for u in insp.get_unique_constraints("message") for c in u["column_names"]}
    assert indexed.isdisjoint({"status", "provider_msg_id", "submitted_at", "provider_state", "provider_desc",
                                "reported_at", "updated_at"})
    assert [ix["column_names"] for ix in insp.get_indexes("rawreport")] == [["received_at"]]
    assert [ix["column_names"] for ix in insp.get_indexes("reportpage")] == [["account", "received_at"]]
    if database.startswith("postgresql"):
        with get_engine(database).connect() as conn:
            assert conn.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'message'")).scalar() == [
                "fillfactor=30"]


def test_db_upgrade_command_on_a_fresh_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {**os.environ, "MSGRELAY_DATABASE_URL": url}
    out = subprocess.run([sys.executable, "-m", "msgrelay.cli", "db", "upgrade"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert {"job", "chunk", "message", "rawreport", "reportpage", "balancesnapshot", "alembic_version"} <= set(
        inspect(get_engine(url)).get_table_names())
