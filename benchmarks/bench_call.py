"""What one verification call costs the machine: CPU per call in the API, the otp worker and the database.

On a machine that a bulk job keeps busy, every step of a verification call waits for a core, so the CPU a call
needs is part of its latency under load (docs/PERFORMANCE.md, "What is left"). This runs the API, an otp worker
at the compose file's concurrency and the simulator, makes N calls one after another (idle: no job), and prints
CPU milliseconds a call per part with each part's own background (timers, heartbeats) taken off, beside the
calls' latency from POST to the provider.

    python -m benchmarks.bench_call [N]        (MSGRELAY_BENCH_DB=postgresql for PostgreSQL)
"""
from __future__ import annotations

import argparse
import time

import requests

from benchmarks.bench_send import OTP_CONCURRENCY, pct, to_provider_ms, verification_call
from benchmarks.harness import bench_env, cpu_use
from msgrelay.cli.priority import nice_argv
from msgrelay.cli.processes import free_port, http_ok, msgrelay_argv, wait_for

PARTS = ("api", "worker-otp", "postgresql", "simulator")
BACKGROUND_S = 10.0


def main() -> None:
    """Run the calls and print what they cost."""
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=300)
    args = ap.parse_args()
    with bench_env(report_delay_s=1.0) as (sup, env, sim_url):
        api = f"http://127.0.0.1:{free_port()}"
        sup.start("api", msgrelay_argv("api", "--port", api.rsplit(":", 1)[1], *nice_argv()), env)
        sup.start("worker-otp", msgrelay_argv("worker", "--queues", "otp", "--concurrency", str(OTP_CONCURRENCY),
                                              *nice_argv("otp")), env)
        log = sup.log_dir / "worker-otp.log"
        wait_for(lambda: b"ready." in log.read_bytes(), what="worker-otp", timeout_s=60)
        wait_for(lambda: http_ok(api + "/healthz"), what="api")
        from models import get_engine
        database = get_engine().dialect.name
        for i in range(20):  # warm up: first connections, first imports, first compiles
            verification_call(api, f"1390001{i:04d}")
        time.sleep(2)
        quiet = cpu_use(sup, database)
        time.sleep(BACKGROUND_S)
        before = cpu_use(sup, database)
        background = {p: (before[p] - quiet[p]) / BACKGROUND_S for p in PARTS if p in before}
        started = time.perf_counter()
        calls = [verification_call(api, f"1390000{i:04d}") for i in range(args.n)]
        (to_provider, _) = to_provider_ms(sim_url, calls, 0.0)
        wall = time.perf_counter() - started
        after = cpu_use(sup, database)
        stats = requests.get(f"{sim_url}/_sim/stats", timeout=30).json()
        print(f"database: {database}; {args.n} verification calls one after another, idle; otp worker "
              f"{OTP_CONCURRENCY} threads; the simulator shares this machine's CPU")
        print("| part | CPU a call | background (taken off) |")
        print("|---|---|---|")
        total = 0.0
        for part in PARTS:
            if part not in after:
                continue
            ms = ((after[part] - before[part]) - background[part] * wall) * 1000 / args.n
            total += ms if part != "simulator" else 0.0
            print(f"| {part} | {ms:.1f} ms | {background[part] * 1000:.1f} ms/s |")
        print(f"msgrelay's own CPU a call (API, otp worker, database): {total:.1f} ms")
        print(f"{len(to_provider)} of {args.n} calls reached the provider: POST to arriving there p50 "
              f"{pct(to_provider, 50):.0f} ms, p99 {pct(to_provider, 99):.0f} ms; POST to 202 p50 "
              f"{pct([c.accepted_ms for c in calls], 50):.0f} ms, p99 {pct([c.accepted_ms for c in calls], 99):.0f} ms")
        print(f"simulator: {stats['accepted_recipients']:,} recipients accepted, {stats['duplicates']} duplicates")

if __name__ == "__main__":
    main()
