"""A raised process (the API, the otp worker) raises the PostgreSQL backends it opens on this machine; a process at
the default or lowered leaves its backends at the server's priority."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from models import get_engine
from models.backend_priority import is_own_backend, raise_backend
from msgrelay.cli.priority import AUTOGROUPS, session_niceness
from tests.conftest import PG_URL, TEST_DB
from tests.test_priority import UNPRIVILEGED, privileged

pytestmark = [pytest.mark.skipif(TEST_DB != "postgresql", reason="PostgreSQL's backends"),
              pytest.mark.skipif(not privileged, reason="raising a priority needs CAP_SYS_NICE (root here)")]


def backend_of_thread_at(nice: int) -> tuple[int, int, int | None]:
    """Open a new engine's first connection from a thread running at niceness `nice` (Linux keeps niceness per
    thread, so the test process stays as it is); the backend's pid, niceness and session niceness after."""
    found: list[tuple[int, int, int | None]] = []

    def run() -> None:
        os.setpriority(os.PRIO_PROCESS, 0, nice)  # 0: this thread
        engine = get_engine.__wrapped__(PG_URL)
        try:
            with engine.connect() as conn:
                pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
                found.append((pid, os.getpriority(os.PRIO_PROCESS, pid), session_niceness(pid)))
        finally:
            engine.dispose()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return found[0]


@pytest.mark.parametrize("nice, backend_nice", [(-5, -5), (0, 0), (7, 0)],
                         ids=["raised: raised too", "default: left alone", "lowered: never lowered"])
def test_backend_runs_at_its_client_raised_priority(nice, backend_nice):
    # given PostgreSQL on this machine, at its own priority
    # when a thread at niceness `nice` opens a connection
    _, got_nice, got_session = backend_of_thread_at(nice)
    # then its backend runs at the raised niceness, in its own session too, or is left alone
    assert got_nice == backend_nice
    if AUTOGROUPS:
        assert got_session == backend_nice


def test_only_the_connections_own_backend_is_touched():
    # given two connections
    engine = get_engine.__wrapped__(PG_URL)
    try:
        with engine.connect() as one, engine.connect() as other:
            mine = one.connection.dbapi_connection
            other_pid = other.execute(text("SELECT pg_backend_pid()")).scalar()
            # then the connection's own backend is known as its own; another's, or a process that is not
            # PostgreSQL, is not (a server in another container could have a backend of any process's id)
            assert is_own_backend(mine.info.backend_pid, mine)
            assert not is_own_backend(other_pid, mine)
            assert not is_own_backend(os.getpid(), mine)
            # and raising one connection's backend raises that one only
            assert raise_backend(mine, -5)
            assert os.getpriority(os.PRIO_PROCESS, mine.info.backend_pid) == -5
            assert os.getpriority(os.PRIO_PROCESS, other_pid) == 0
    finally:
        engine.dispose()


RAISE_AS_NOBODY = ("import psycopg, os; from models.backend_priority import raise_backend; "
                   "conn = psycopg.connect({dsn!r}); print(raise_backend(conn, -5), "
                   "os.getpriority(os.PRIO_PROCESS, conn.info.backend_pid))")


def test_a_process_without_cap_sys_nice_leaves_the_backend_alone():
    # when a process that may not raise priorities (nobody) tries to raise its own connection's backend
    from sqlalchemy.engine import make_url
    url = make_url(PG_URL)
    dsn = f"host={url.host} port={url.port} user={url.username} dbname={url.database}"
    out = subprocess.run([*UNPRIVILEGED, sys.executable, "-c", RAISE_AS_NOBODY.format(dsn=dsn)], capture_output=True,
                         text=True, check=True, timeout=60, cwd=Path(__file__).resolve().parents[2]).stdout.split()
    # then it says it could not, and nothing changed
    assert out == ["False", "0"]
