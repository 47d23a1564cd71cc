"""A PostgreSQL backend on this machine runs at the raised CPU priority of the process it serves.

A raised process (the API and the otp worker, `--nice -10`) waits for its backend at every statement, and each
backend leads a session of its own (PostgreSQL's children call setsid), so the kernel shares the CPU between it and
every other backend at full weight: the verification call's statements would queue behind the bulk job's. So a
raised process raises each backend it opens (its niceness and its session's), when the server is on this machine
and the process may (CAP_SYS_NICE). Backends of lowered processes are never lowered: a lowered backend holding a
lock (the WAL flush) that a raised one needs made the slowest calls slower (docs/PERFORMANCE.md, eleventh session).
"""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


def share_raised_priority(engine: Engine) -> None:
    """Raise each new connection's backend to this process's niceness when that is raised (below 0)."""

    @event.listens_for(engine, "connect")
    def _raise(dbapi_conn: Any, _record: Any) -> None:
        nice = os.getpriority(os.PRIO_PROCESS, 0)  # this thread's, as its process set it before starting threads
        if nice < 0:
            raise_backend(dbapi_conn, nice)


def raise_backend(dbapi_conn: Any, nice: int) -> bool:
    """Give the connection's backend niceness `nice` (and its session's); False when it is not on this machine or
    this process may not (nothing changes then)."""
    pid = getattr(getattr(dbapi_conn, "info", None), "backend_pid", None)  # psycopg 3: known since the handshake
    if not pid or not is_own_backend(pid, dbapi_conn):
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
        autogroup = Path(f"/proc/{pid}/autogroup")
        if autogroup.exists():  # the backend leads its session, so its autogroup is its alone
            autogroup.write_text(str(nice))
    except OSError as exc:  # not permitted (no CAP_SYS_NICE): the backend stays at the server's priority
        log.debug("backend %s stays at its priority: %s", pid, exc.strerror)
        return False
    return True


def is_own_backend(pid: int, dbapi_conn: Any) -> bool:
    """Whether process `pid` of this machine is this connection's backend: a PostgreSQL process whose title names
    this connection's user, database and client end ("[local]" over a Unix socket, "host(port)" over TCP). A server
    elsewhere (another machine, another container) fails this even when a process of that id exists here."""
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
            return False
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        with socket.socket(fileno=os.dup(dbapi_conn.fileno())) as sock:
            end = "[local]" if sock.family == socket.AF_UNIX else f"({sock.getsockname()[1]})"
    except (OSError, ValueError):
        return False
    info = dbapi_conn.info
    return f" {info.user} {info.dbname} " in title and end in title
