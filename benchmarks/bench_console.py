"""How fast the API and the console answer at scale: a 1,000,000-recipient job (settled: delivered, failed and
expired mixed, as after a run) among 10,000 other jobs, read over real HTTP from the API process.

    MSGRELAY_BENCH_DB=postgresql python -m benchmarks.bench_console [RECIPIENTS] [JOBS]

Prints p50, p99 and the worst of each page and the limit beside it (issue 13: GET /v1/jobs/{id} and the job page
under 50 ms for a 1,000,000-recipient job on PostgreSQL). Loopback, no key configured: the console logs in as
`local`, as an operator on the machine would.
"""
from __future__ import annotations

import statistics
import sys
import time
from datetime import timedelta

import requests

from benchmarks.harness import bench_env
from msgrelay.cli.processes import free_port, http_ok, msgrelay_argv, wait_for

LIMIT_MS = 50.0
ROUNDS = 100


def build(recipients: int, jobs: int) -> int:
    """The big job, written and settled as a run leaves it, and `jobs` small ones; returns the big job's id."""
    from sqlalchemy import insert, text, update

    from models import Chunk, Job, JobProgress, get_engine, session_scope, utcnow
    from models.counts import compact
    from msgrelay.upload import submit_stream
    from msgrelay.accounts import get_accounts
    started = time.perf_counter()
    done = submit_stream(accounts=get_accounts(), account="voice", route=None, kind="notify",
                         recipients=(f"13{i:09d}" for i in range(recipients)), content="基准测试通知", options={},
                         idempotency_key=None, send_at=None, callback_url=None, valid_until=None,
                         enqueue=lambda _chunks: None)
    print(f"submitted {recipients:,} recipients in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    now = utcnow()
    with get_engine().begin() as conn:  # one statement, as the report path's set-based updates do
        conn.execute(text("UPDATE message SET status = CASE WHEN seq % 20 < 16 THEN 'delivered' "
                          "WHEN seq % 20 < 19 THEN 'failed' ELSE 'expired' END, submitted_at = :now, "
                          "reported_at = :now WHERE job_id = :job"), {"now": now, "job": done.id})
    with session_scope() as session:
        session.execute(update(Chunk).where(Chunk.job_id == done.id).values(status="sent", updated_at=now))
        session.execute(update(Job).where(Job.id == done.id).values(status="done", finished_at=now))
        for i in range(60):  # a two-minute run's notes, one per two seconds
            n = recipients * (i + 1) // 60
            session.add(JobProgress(job_id=done.id, at=now - timedelta(seconds=120 - 2 * i), counts={
                "queued": recipients - n, "submitted": n // 2, "delivered": n // 2, "failed": 0, "expired": 0,
                "rejected": 0, "unknown": 0}))
        compact(session, [done.id])
        session.execute(insert(Job), [{
            "uid": f"bench{i:012d}", "account": "voice", "provider": "emay_voice", "kind": "notify",
            "status": ("done", "running", "paused", "queued")[i % 4], "options": {}, "total": 100, "chunks": 1,
            "created_at": now, "updated_at": now, "suppressed": 0, "capped": 0, "not_sent_in_time": 0,
            "reason": "operator" if i % 4 == 2 else None} for i in range(jobs)])
    print(f"settled it and wrote {jobs:,} other jobs in {time.perf_counter() - started:.1f} s")
    return done.id


def timings(session: requests.Session, url: str) -> list[float]:
    """Milliseconds of ROUNDS GETs of `url` (after two to warm up), each checked to answer 200."""
    for _ in range(2):
        session.get(url, timeout=30).raise_for_status()
    out = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        answer = session.get(url, timeout=30)
        out.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return out


def main(recipients: int, jobs: int) -> None:
    with bench_env(with_simulator=False) as (sup, env, _sim):
        from models import get_engine
        print(f"database: {get_engine().dialect.name}")
        big = build(recipients, jobs)
        port = free_port()
        sup.start("api", msgrelay_argv("api", "--port", str(port)), env)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(base + "/healthz"), what="the API", timeout_s=60)
        session = requests.Session()
        session.get(base + "/ui/login", timeout=30).raise_for_status()  # loopback, no key: logged in as local
        size = f"{recipients:,}-recipient job"
        pages = [(f"GET /v1/jobs/{{id}} ({size})", f"/v1/jobs/{big}", True),
                 (f"console job page ({size})", f"/ui/jobs/{big}", True),
                 (f"console job chart ({size})", f"/ui/jobs/{big}/chart", False),
                 ("console live progress", f"/ui/live/jobs?ids={big}", False),
                 (f"console jobs page ({jobs + 1:,} jobs)", "/ui/jobs", False),
                 ("console jobs page, paused filter", "/ui/jobs?status=paused", False),
                 ("GET /v1/jobs?limit=50", "/v1/jobs?limit=50", False),
                 ("console accounts page", "/ui/accounts", False),
                 ("/metrics", "/metrics", False)]
        print(f"\n{'page':<48} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'limit':>8}")
        failed = []
        for label, path, bound in pages:
            ms = sorted(timings(session, base + path))
            p99 = ms[int(len(ms) * 0.99) - 1]
            limit = f"{LIMIT_MS:.0f}" if bound else "-"
            print(f"{label:<48} {statistics.median(ms):>8.1f} {p99:>8.1f} {ms[-1]:>8.1f} {limit:>8}")
            if bound and statistics.median(ms) > LIMIT_MS:
                failed.append(label)
        print(f"\nlimit: median under {LIMIT_MS:.0f} ms for the big job's JSON and page: "
              f"{'met' if not failed else 'NOT met: ' + ', '.join(failed)}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(args[0] if args else 1_000_000, args[1] if len(args) > 1 else 10_000)
