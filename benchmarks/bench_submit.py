"""Submit speed and memory: validate + write job/chunks/messages in one transaction + enqueue, 10k → 1M recipients.

    python -m benchmarks.bench_submit [N ...]          (SQLite)
    MSGRELAY_BENCH_DB=postgresql python -m benchmarks.bench_submit
"""
from __future__ import annotations

import sys
import time

from benchmarks.harness import bench_env, peak_rss_mb


def main(sizes: list[int]) -> None:
    """Print seconds, recipients/s and peak memory per job size."""
    with bench_env(with_simulator=False):
        from sqlalchemy import func, select

        from models import Message, get_engine, session_scope
        from tasks import submit
        print(f"database: {get_engine().dialect.name}")
        print(f"{'recipients':>10} {'seconds':>8} {'per second':>11} {'chunks':>7} {'peak RSS MB':>12}")
        for n in sizes:
            people = [f"13{i:09d}" for i in range(n)]
            started = time.perf_counter()
            done = submit("voice", "notify", people, content="基准测试通知")
            took = time.perf_counter() - started
            print(f"{n:>10} {took:>8.2f} {n / took:>11,.0f} {done.chunks:>7} {peak_rss_mb():>12.0f}")
            del people
        with session_scope() as session:
            print(f"messages written: {session.scalar(select(func.count()).select_from(Message)):,}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000])
