"""The benchmark's floor under a verification call (benchmarks.commit_floor): durable commits one at a time by a
bare client of the real PostgreSQL, its backend at the calls' priority, and the line that reports them."""
from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import inspect, text

from benchmarks.bench_send import pct
from benchmarks.commit_floor import TABLE, CommitFloor, floor_line
from models import get_engine
from msgrelay.cli.processes import free_port
from tests.conftest import PG_URL, TEST_DB
from tests.test_priority import privileged

NICE = -5


@pytest.mark.skipif(TEST_DB != "postgresql", reason="PostgreSQL's commits")
def test_commits_one_at_a_time_with_its_backend_raised_and_leaves_no_table():
    floor = CommitFloor(PG_URL, NICE)
    floor.start()
    engine = get_engine()
    deadline, backend = time.monotonic() + 30, None
    while backend is None and time.monotonic() < deadline:
        with engine.connect() as conn:
            backend = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE query LIKE :q AND pid <> "
                                        "pg_backend_pid()"), {"q": f"INSERT INTO {TABLE}%"}).scalar()
        time.sleep(0.05)
    assert backend is not None, "the bare client never committed"
    niceness = os.getpriority(os.PRIO_PROCESS, backend)
    time.sleep(0.5)
    ms = floor.stop()
    assert len(ms) >= 5 and all(0 < m < 10_000 for m in ms)
    with engine.connect() as conn:
        assert TABLE not in inspect(conn).get_table_names()
    if privileged:  # as msgrelay raises a call's backend
        assert niceness == NICE


def test_a_client_that_cannot_connect_is_said_when_stopped():
    floor = CommitFloor(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test", 0)
    floor.start()
    with pytest.raises(RuntimeError, match="the commit floor's bare client failed: OperationalError: connection"):
        floor.stop()


@pytest.mark.parametrize(("idle", "during", "shown"), [
    ([1.0] * 99 + [3.0], [2.0] * 99 + [21.0], "p50 / p99 idle 1.0 / 3.0 ms (100) → during 2.0 / 21.0 ms (100): 7.0×"),
    ([1.0, 2.0], [2.0, 4.0], "idle 2.0 / 2.0 ms (2) → during 4.0 / 4.0 ms (2): 2.0×"),  # pct rounds up
    ([], [5.0], "idle 0.0 / 0.0 ms (0) → during 5.0 / 5.0 ms (1)"),  # no idle commits: no division by zero
])
def test_the_floor_line(idle, during, shown):
    assert shown in floor_line(idle, during, pct)
