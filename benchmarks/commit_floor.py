"""The floor under a verification call on this machine: one durable commit by a bare client, idle and during the job.

A call waits for two durable commits on its way (the API's write, the otp worker's claim before its request), and
each waits for the WAL to reach the disk, which the job keeps busy. A bare client committing one row at a time,
at the calls' priority and with its backend raised as msgrelay raises the call's, shows how much of a call's tail
is the machine's: when a lone commit's p99 grows k-fold under the job, no client of the same server does better.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence

from sqlalchemy.engine import make_url

#: the bare client's own table (dropped when it stops)
TABLE = "bench_commit_floor"
#: one commit this often: about the calls' own pace
EVERY_S = 0.05


class CommitFloor:
    """Durable commits one at a time, from a process of its own (spawned, like the calls), until stopped."""

    def __init__(self, url: str, nice: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.ms: list[float] = []
        self._stop, self._results = context.Event(), context.Queue()
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._process = context.Process(target=commit_until, args=(dsn, nice, self._stop, self._results), daemon=True)

    def start(self) -> None:
        """Begin committing."""
        self._process.start()

    def stop(self) -> list[float]:
        """Stop after the commit in flight; each commit's milliseconds (also kept in `ms`)."""
        self._stop.set()
        got = self._results.get(timeout=60)
        self._process.join(timeout=30)
        if isinstance(got, str):
            raise RuntimeError(f"the commit floor's bare client failed: {got}")
        self.ms = got
        return self.ms


def commit_until(dsn: str, nice: int, stop, results) -> None:
    """Commit one row every EVERY_S until `stop` is set, then put each commit's milliseconds on `results` (or
    what went wrong, as text) (a process's target). It leads a session of its own at niceness `nice`, and raises its
    backend alike."""
    try:
        results.put(_commit_until(dsn, nice, stop))
    except Exception as exc:  # said by `stop`, in the benchmark's own process
        results.put(f"{type(exc).__name__}: {exc}")


def _commit_until(dsn: str, nice: int, stop) -> list[float]:
    """`commit_until`'s work: each commit's milliseconds."""
    import psycopg

    from models.backend_priority import raise_backend
    from msgrelay.cli.priority import change_priority

    os.setsid()  # as the benchmark starts msgrelay's processes: its session's niceness is then its own
    change_priority(nice)
    ms: list[float] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        raise_backend(conn, nice)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (at timestamptz NOT NULL)")
        while not stop.is_set():
            started = time.perf_counter()
            conn.execute(f"INSERT INTO {TABLE} VALUES (now())")  # autocommit: the statement's own durable commit
            ms.append((time.perf_counter() - started) * 1000)
            stop.wait(EVERY_S)
        conn.execute(f"DROP TABLE {TABLE}")
    return ms


def floor_line(idle: Sequence[float], during: Sequence[float], pct: Callable[[Sequence[float], int], float]) -> str:
    """The benchmark's line for the floor: one commit's p50 / p99, idle → during, and how much it grew."""
    grew = pct(during, 99) / max(pct(idle, 99), 1e-9)
    return (f"  the floor: one durable commit by a bare client at the calls' priority, p50 / p99 idle "
            f"{pct(idle, 50):.1f} / {pct(idle, 99):.1f} ms ({len(idle)}) → during {pct(during, 50):.1f} / "
            f"{pct(during, 99):.1f} ms ({len(during)}): {grew:.1f}× under the job (a call waits for two)")
