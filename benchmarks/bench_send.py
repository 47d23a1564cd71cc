"""End to end: N recipients through the workers and the simulator, while verification calls go through `otp`.

Prints submit time, time until every recipient is submitted and reported, provider requests per second,
duplicates seen by the simulator, and the latency of verification calls made during the bulk load.

    python -m benchmarks.bench_send [N] [--latency S]
"""
from __future__ import annotations

import argparse
import statistics
import time

import requests

from benchmarks.harness import bench_env, group_rss_mb
from msgrelay.cli.processes import msgrelay_argv, wait_for


def main() -> None:
    """Run the benchmark and print its numbers."""
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=200_000)
    ap.add_argument("--latency", type=float, default=0.05, help="simulated provider round trip, seconds")
    ap.add_argument("--concurrency", type=int, default=8, help="bulk worker processes")
    args = ap.parse_args()
    with bench_env(report_delay_s=1.0) as (sup, env, sim_url):
        sup.start("worker-otp", msgrelay_argv("worker", "--queues", "otp", "--concurrency", "1"), env)
        sup.start("worker-bulk", msgrelay_argv("worker", "--queues", "bulk,poll", "--concurrency",
                                               str(args.concurrency)), env)
        sup.start("beat", msgrelay_argv("beat", "--schedule-file", str(sup.log_dir / "beat-schedule")), env)
        for name in ("worker-otp", "worker-bulk"):
            log = sup.log_dir / f"{name}.log"
            wait_for(lambda: b"ready." in log.read_bytes(), what=name, timeout_s=60)
        requests.post(f"{sim_url}/_sim/faults", json={"latency_s": args.latency}, timeout=5).raise_for_status()
        from models import get_engine, session_scope
        from msgrelay.jobs import view_job
        from tasks import submit
        print(f"database: {get_engine().dialect.name}")

        started = time.perf_counter()
        job = submit("voice", "notify", [f"13{i:09d}" for i in range(args.n)], content="基准测试")
        t_submit = time.perf_counter() - started
        otp_latency = []
        t_sent = t_done = None
        bulk_pgid = sup.children["worker-bulk"].pid
        peak_worker_mb = 0.0
        while t_done is None and time.perf_counter() - started < 3600:
            peak_worker_mb = max(peak_worker_mb, group_rss_mb(bulk_pgid))
            if len(otp_latency) < 10:  # a verification call every loop while the bulk job runs
                call_started = time.perf_counter()
                otp = submit("voice", "vfcode", [f"1370000{len(otp_latency):04d}"], content="123456")
                wait_for(lambda: _counts(otp.id)["queued"] == 0, what="vfcode sent", timeout_s=120)
                otp_latency.append(time.perf_counter() - call_started)
            counts = _counts(job.id)
            if t_sent is None and counts["queued"] == 0:
                t_sent = time.perf_counter() - started
            with session_scope() as session:
                if view_job(session, job.id).status == "done":
                    t_done = time.perf_counter() - started
            time.sleep(0.5)
        stats = requests.get(f"{sim_url}/_sim/stats", timeout=10).json()
        print(f"recipients {args.n:,}  provider latency {args.latency * 1000:.0f} ms  bulk processes {args.concurrency}")
        print(f"submit (validate + write + enqueue): {t_submit:.2f}s")
        print(f"all submitted to the provider: {t_sent:.1f}s  ({args.n / t_sent:,.0f} recipients/s, "
              f"{stats['accepted_requests'].get('/voice/send', 0) / t_sent:.1f} requests/s)")
        print(f"all reported, job done: {t_done:.1f}s")
        print(f"simulator: {stats['accepted_recipients']:,} recipients accepted, {stats['duplicates']} duplicates")
        print(f"bulk worker (main + {args.concurrency} pool processes) peak RSS: {peak_worker_mb:.0f} MB")
        print(f"verification calls during the load: median {statistics.median(otp_latency) * 1000:.0f} ms, "
              f"max {max(otp_latency) * 1000:.0f} ms (submit to provider-accepted)")


def _counts(job_id: int) -> dict:
    from models import session_scope
    from msgrelay.jobs import message_counts
    with session_scope() as session:
        return message_counts(session, job_id)


if __name__ == "__main__":
    main()
