"""Reports applied per second: from drained pages (the provider's JSON) to committed message statuses, with no
HTTP in between. One job of N submitted messages; its reports in pages of 1,000 (Emay voice's getReport), taken
by the poll's own `Spool.pull` (kept in Redis, parsed, settled by `msgrelay.reports.ingest` in batches of at most
`BATCH_REPORTS`), as a poll does.

    python -m benchmarks.bench_reports [N]            (MSGRELAY_BENCH_DB=postgresql for PostgreSQL)
"""
from __future__ import annotations

import json
import sys
import threading
import time
from datetime import timedelta

from benchmarks.harness import bench_env
from providers.values import HttpResponse

TARGET_PER_S = 50_000


def main(n: int) -> None:
    """Write the job, build its report pages, time their application."""
    with bench_env(with_simulator=False):
        from sqlalchemy import func, select

        from models import Job, Message, get_engine, session_scope, utcnow
        from models.bulk import insert_messages
        from models.counts import job_counts
        from msgrelay.accounts import get_accounts
        from msgrelay.reports import BATCH_REPORTS, ingest
        from msgrelay.spool import Spool
        from providers.registry import get_provider
        account = get_accounts()["voice"]
        provider = get_provider(account.provider)
        now = utcnow()
        with session_scope() as session:
            job = Job(uid="benchreports0000", account="voice", provider=account.provider, kind="notify",
                      status="running", content="基准", total=n, chunks=n // 500)
            session.add(job)
            session.flush()
            insert_messages(session, ((job.id, i, f"13{i:09d}", None, f"benchreports0000{i:08d}", False,
                                       "submitted", now) for i in range(n)))
            job_id = job.id
        sent = (now + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
        pages = [HttpResponse(200, json.dumps({"code": "SUCCESS", "data": [
            {"voiceId": f"V{i}", "customVoiceId": f"benchreports0000{i:08d}", "mobile": f"13{i:09d}",
             "state": "SUCCESS" if i % 10 else "FAIL_CALL", "message": "", "callingTime": sent}
            for i in range(start, min(n, start + 1000))]}), {}) for start in range(0, n, 1000)]
        print(f"database: {get_engine().dialect.name}; {n:,} reports in {len(pages)} pages, "
              f"{BATCH_REPORTS:,} a transaction")
        matched = 0
        counting = threading.Lock()

        def store(reports: list) -> None:  # the spool's writer threads call it, several at once
            nonlocal matched
            n = ingest(account, reports, "poll")
            with counting:
                matched += n

        pages.append(HttpResponse(200, json.dumps({"code": "SUCCESS", "data": []}), {}))  # the short page
        answers = iter(pages)
        started = time.perf_counter()
        Spool(account.name, "reports").pull(lambda: next(answers), provider.parse_reports, store,
                                            pages=len(pages), page_size=provider.report_page_size,
                                            batch_items=BATCH_REPORTS)
        took = time.perf_counter() - started
        with session_scope() as session:
            open_left = session.scalar(select(func.count()).select_from(Message).where(
                Message.job_id == job_id, Message.status == "submitted"))
            counts = job_counts(session, job_id)
        print(f"applied {matched:,} reports in {took:.2f} s: {matched / took:,.0f} reports/s "
              f"(target ≥ {TARGET_PER_S:,}/s); still submitted: {open_left}; counters: "
              f"delivered {counts['delivered']:,}, failed {counts['failed']:,}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
