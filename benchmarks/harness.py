"""A throw-away stack for benchmarks: a temp dir, embedded Redis, the simulator, the database of your choice."""
from __future__ import annotations

import contextlib
import os
import resource
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from msgrelay.cli.processes import Supervisor, free_port, http_ok, msgrelay_argv, start_embedded_redis, wait_for

ACCOUNTS = """
[accounts.voice]
provider = "emay_voice"
base_url = "{sim}"
app_id = "EUCP-EMY-BENCH-VOICE"
secret_key = "0123456789abcdef"

# the same-run limit's bare client (benchmarks.limit): its own appId, so the simulator counts it apart
[accounts.bare]
provider = "emay_voice"
base_url = "{sim}"
app_id = "EUCP-EMY-BENCH-BARE"
secret_key = "0123456789abcdef"
poll_reports = false  # drained by the bare client, not by msgrelay
"""


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dirty_mb() -> float:
    """The kernel's dirty page cache (written data not yet on disk), in MB: what a writeback burst writes at once."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Dirty:"):
            return int(line.split()[1]) / 1024
    return 0.0


def group_rss_mb(pgid: int, field: str = "VmRSS") -> float:
    """Resident memory of every process in a process group (a worker and its pool), in MB, from /proc;
    `field="VmHWM"` gives each process's peak instead (what sampling every quarter second may miss)."""
    total_kb = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # field 5 of stat: the process group id
                for line in (stat.parent / "status").read_text().splitlines():
                    if line.startswith(f"{field}:"):
                        total_kb += int(line.split()[1])
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
    return total_kb / 1024


def cpu_seconds(pgid: int | None = None, command: str | None = None) -> float:
    """CPU time (user + system) used so far by the processes of a process group, or by every process whose
    command is `command` (`postgres`: the server and its backends), from /proc. Children that have exited count
    too, through their parent's (a backend of a connection the pool closed, through the postmaster's)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            name, fields = text[text.index("(") + 1:text.rindex(")")], text.rsplit(")", 1)[1].split()
            if (pgid is not None and int(fields[2]) == pgid) or (command is not None and name == command):
                ticks += sum(map(int, fields[11:15]))  # fields 14–17 of stat: utime, stime, cutime, cstime
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_use(sup: Supervisor, database: str) -> dict[str, float]:
    """CPU seconds used so far by each part of the stack (the database server when it is PostgreSQL on this
    machine, this benchmark process with its polls and the processes it has waited for: its verification calls')."""
    used = {name: cpu_seconds(pgid=child.pid) for name, child in sup.children.items()}
    if database == "postgresql":
        used["postgresql"] = cpu_seconds(command="postgres")
    times = os.times()
    used["benchmark"] = times.user + times.system + times.children_user + times.children_system
    return used


def cpu_line(used: dict[str, float], wall_s: float) -> str:
    """CPU seconds by part, largest first, beside what the machine had."""
    cores = os.cpu_count() or 1
    return (f"CPU during the job (s; {cores} cores × {wall_s:.1f} s = {cores * wall_s:.0f} s): "
            + ", ".join(f"{name} {s:.1f}" for name, s in sorted(used.items(), key=lambda kv: -kv[1])))


def database_url(workdir: Path) -> str:
    """MSGRELAY_BENCH_DB=postgresql uses MSGRELAY_BENCH_PG_URL (schema reset); default a fresh SQLite file."""
    if os.environ.get("MSGRELAY_BENCH_DB") == "postgresql":
        return os.environ.get("MSGRELAY_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    return f"sqlite:///{workdir / 'bench.db'}"


@contextmanager
def bench_env(*, with_simulator: bool = True, report_delay_s: float = 1.0):
    """Set MSGRELAY_* for a fresh database, embedded Redis and (optionally) the simulator; yields (sup, env, sim_url)."""
    workdir = Path(tempfile.mkdtemp(prefix="msgrelay-bench-"))
    with Supervisor(workdir / "logs") as sup:  # a stop signal (Ctrl-C, SIGTERM) stops every child too
        sim_port = free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        (workdir / "accounts.toml").write_text(ACCOUNTS.format(sim=sim_url))
        url = database_url(workdir)
        os.environ.update({
            "MSGRELAY_DATABASE_URL": url, "MSGRELAY_ACCOUNTS_FILE": str(workdir / "accounts.toml"),
            "MSGRELAY_POLL_REPORTS_EVERY_S": "1", "MSGRELAY_SWEEP_EVERY_S": "5",
        })
        os.environ["MSGRELAY_BROKER_URL"] = start_embedded_redis(sup, workdir)
        from msgrelay.settings import reload_settings
        reload_settings()
        with server_as_compose(url):
            _reset_schema(url)
            if with_simulator:
                sup.start("simulator", msgrelay_argv("simulate", "--port", str(sim_port), "--report-delay",
                                                     str(report_delay_s)), dict(os.environ))
                wait_for(lambda: http_ok(sim_url + "/_sim/stats"), what="simulator")
            yield sup, dict(os.environ), sim_url


#: PostgreSQL's `max_wal_size` as docker-compose.yml runs it (tests/test_bench_server.py checks they agree)
COMPOSE_MAX_WAL_SIZE = "4GB"


@contextmanager
def server_as_compose(url: str):
    """PostgreSQL with docker-compose.yml's `max_wal_size` for the run (a 1M job then checkpoints in none of it, as
    in production), and the server's own setting back afterwards; a server this user may not configure (no
    superuser) runs as it is, and the WAL line says which setting the run had."""
    from sqlalchemy.exc import DBAPIError
    if not url.startswith("postgresql"):
        yield
        return
    own = None
    try:
        own = _admin(url, "SELECT setting FROM pg_file_settings WHERE name = 'max_wal_size' AND "
                          "sourcefile LIKE '%postgresql.auto.conf' AND applied")
        _set_max_wal_size(url, COMPOSE_MAX_WAL_SIZE)
    except DBAPIError as exc:  # not a superuser: nothing was changed (or, past the ALTER, it is put back)
        with contextlib.suppress(DBAPIError):
            _set_max_wal_size(url, own)
        print(f"(PostgreSQL's max_wal_size stays as it is: {exc.orig})")
        yield
        return
    print(f"PostgreSQL runs with max_wal_size {COMPOSE_MAX_WAL_SIZE} for this run, as docker-compose.yml sets it "
          "(the server's own setting comes back afterwards)")
    try:
        yield
    finally:  # a connection of its own: the run's may have been terminated (the chaos run does that)
        _set_max_wal_size(url, own)


def _set_max_wal_size(url: str, size: str | None) -> None:
    """ALTER SYSTEM the server's `max_wal_size` (None: back to its configuration file's) and wait until it holds."""
    _admin(url, f"ALTER SYSTEM SET max_wal_size = '{size}'" if size else "ALTER SYSTEM RESET max_wal_size")
    _admin(url, "SELECT pg_reload_conf()")
    want = _admin(url, "SELECT setting FROM pg_file_settings WHERE name = 'max_wal_size' AND applied "
                       "ORDER BY seqno DESC LIMIT 1")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and want and _admin(url, "SHOW max_wal_size") != want:
        time.sleep(0.05)  # the reload reaches new backends a moment later


def _admin(url: str, statement: str):
    """One statement on a connection of its own, outside a transaction; its first value."""
    from sqlalchemy import text

    from models import get_engine
    with get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        result = conn.execute(text(statement))
        return result.scalar() if result.returns_rows else None


def _reset_schema(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from models import get_engine
    from models.migrate import upgrade
    if url.startswith("postgresql"):
        with get_engine(url).begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        # what the previous run left dirty is written now, not during this run (a 1M run writes gigabytes of WAL:
        # the run after it paid for its last checkpoint); needs a superuser or pg_checkpoint, else skipped
        with get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            try:
                conn.execute(text("CHECKPOINT"))
            except DBAPIError as exc:
                print(f"(no CHECKPOINT before the run: {exc.orig})")
        # and the disk takes it now, not while the idle calls commit (it does not end every idle stall: the
        # thirteenth session in docs/PERFORMANCE.md)
        os.sync()
    upgrade(url)


def wal_use(database: str) -> dict[str, float] | None:
    """PostgreSQL's WAL counters so far (`pg_stat_wal`, 14 and later) with its checkpoints and `max_wal_size`;
    None on SQLite or where they cannot be read."""
    if database != "postgresql":
        return None
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from models import get_engine
    try:
        with get_engine().connect() as conn:
            row = conn.execute(text(
                "SELECT w.wal_bytes, w.wal_fpi, w.wal_sync, w.wal_buffers_full, "
                "b.checkpoints_timed + b.checkpoints_req, current_setting('max_wal_size'), pg_current_wal_lsn() "
                "FROM pg_stat_wal w, pg_stat_bgwriter b")).one()
    except DBAPIError:
        return None
    return {"bytes": float(row[0]), "fpi": row[1], "fsyncs": row[2], "buffers_full": row[3], "checkpoints": row[4],
            "max_wal_size": row[5], "lsn": str(row[6])}


def wal_line(before: dict | None, after: dict | None, recipients: int) -> str | None:
    """What the job wrote to PostgreSQL's WAL: bytes, a recipient's share, full-page images, fsyncs, checkpoints."""
    if not before or not after:
        return None
    d = {k: after[k] - before[k] for k in ("bytes", "fpi", "fsyncs", "buffers_full", "checkpoints")}
    return (f"WAL during the job: {d['bytes'] / 1e9:.2f} GB, {d['bytes'] / recipients:,.0f} bytes a recipient; "
            f"{d['fpi']:,} full-page images, {d['fsyncs']:,} WAL fsyncs, WAL buffers full {d['buffers_full']:,} "
            f"times, {d['checkpoints']} checkpoints (max_wal_size {after['max_wal_size']}); "
            f"WAL positions {before['lsn']}–{after['lsn']} (`pg_waldump --stats=record` reads what wrote it)")


def timed(label: str):
    """Context manager printing how long the block took."""
    @contextmanager
    def _block():
        started = time.perf_counter()
        yield
        print(f"{label}: {time.perf_counter() - started:.2f}s")
    return _block()
