"""End to end through the public contract, with the same-run limit beside it.

One `POST /v1/jobs` of N notify recipients to a running API, `otp`, `bulk` and `poll` workers at the
compose file's concurrency, beat, and the simulator (all on this machine: the simulator shares the CPU).
Verification calls go through the API before the job (idle) and all through it. Then the same work is done
bare (``benchmarks.limit``) and `limit / done` is printed with the issue's target beside it.

    python -m benchmarks.bench_send [N] [--latency S]        (MSGRELAY_BENCH_DB=postgresql for PostgreSQL)
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from benchmarks.call_steps import call_steps, otp_log_lines, steps_line, taken_at, written_calls
from benchmarks.commit_floor import CommitFloor, floor_line
from benchmarks.harness import bench_env, cpu_line, cpu_use, dirty_mb, group_rss_mb, wal_line, wal_use
from benchmarks.limit import measure
from msgrelay.cli.priority import API_NICE, nice_argv
from msgrelay.cli.processes import free_port, http_ok, msgrelay_argv, wait_for
from msgrelay.settings import get_settings

CONTENT = "基准测试"
TARGET_RATIO = 0.5
OTP_CONCURRENCY, BULK_CONCURRENCY, POLL_CONCURRENCY = 2, 8, 4  # docker-compose.yml
VFCODE_ENDPOINT = "/voice/sendVFCode"


def main() -> None:
    """Run the benchmark and print its numbers."""
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=200_000)
    ap.add_argument("--latency", type=float, default=0.05, help="simulated provider round trip, seconds")
    ap.add_argument("--concurrency", type=int, default=BULK_CONCURRENCY, help="bulk worker processes or threads")
    ap.add_argument("--pool", default="threads", help="the bulk worker's pool: prefork or threads")
    ap.add_argument("--policy", action="store_true", help="the sending account with a send window (open now), a "
                                                          "frequency cap and a 100,000-entry suppression list")
    args = ap.parse_args()
    with bench_env(report_delay_s=1.0) as (sup, env, sim_url):
        if args.policy:
            with_policy(env["MSGRELAY_ACCOUNTS_FILE"])
        api = f"http://127.0.0.1:{free_port()}"
        sup.start("api", msgrelay_argv("api", "--port", api.rsplit(":", 1)[1], *nice_argv()), env)
        sup.start("worker-otp", msgrelay_argv("worker", "--queues", "otp", "--concurrency", str(OTP_CONCURRENCY),
                                              *nice_argv("otp")), env)
        # sends and reports yield the CPU to verification calls and the API, as compose runs them
        sup.start("worker-bulk", msgrelay_argv("worker", "--queues", "bulk", "--concurrency",
                                               str(args.concurrency), "--pool", args.pool, *nice_argv("bulk")), env)
        sup.start("worker-poll", msgrelay_argv("worker", "--queues", "poll", "--concurrency",
                                               str(POLL_CONCURRENCY), "--pool", args.pool, *nice_argv("poll")), env)
        sup.start("beat", msgrelay_argv("beat", "--schedule-file", str(sup.log_dir / "beat-schedule")), env)
        for name in ("worker-otp", "worker-bulk", "worker-poll"):
            log = sup.log_dir / f"{name}.log"
            wait_for(lambda: b"ready." in log.read_bytes(), what=name, timeout_s=60)
        wait_for(lambda: http_ok(api + "/healthz"), what="api")
        requests.post(f"{sim_url}/_sim/faults", json={"latency_s": args.latency}, timeout=5).raise_for_status()
        from models import get_engine
        from msgrelay.accounts import get_accounts
        database = get_engine().dialect.name
        groups = {name: sup.children[name].pid for name in ("worker-bulk", "worker-poll", "worker-otp", "api")}

        for i in range(3):  # warm up: first connections, first imports
            verification_call(api, f"1390001{i:04d}")
        floors = {phase: CommitFloor(get_engine().url.render_as_string(hide_password=False), API_NICE)
                  for phase in ("idle", "during")} if database == "postgresql" else {}
        if floors:
            floors["idle"].start()
        idle_calls = [verification_call(api, f"1390000{i:04d}") for i in range(IDLE_CALLS)]
        if floors:
            floors["idle"].stop()
        mobiles = [f"13{i:09d}" for i in range(args.n)]
        calls = OtpCalls(api)
        cpu_before, wal_before = cpu_use(sup, database), wal_use(database)
        started, started_wall = time.perf_counter(), time.time()
        job = post(api, {"account": "voice", "kind": "notify", "content": CONTENT, "recipients": mobiles})
        t_submit = time.perf_counter() - started
        calls.start()
        if floors:
            floors["during"].start()
        t_sent = t_done = None
        peak, dirty = dict.fromkeys(groups, 0.0), 0.0
        while t_done is None and time.perf_counter() - started < 3600:
            for name, pgid in groups.items():
                peak[name] = max(peak[name], group_rss_mb(pgid))
            dirty = max(dirty, dirty_mb())
            view = requests.get(f"{api}/v1/jobs/{job}", timeout=30).json()
            if t_sent is None and view["counts"]["queued"] == 0:
                t_sent = time.perf_counter() - started
            if view["status"] == "done":
                t_done = time.perf_counter() - started
            time.sleep(0.25)
        calls.stop()
        if floors:
            floors["during"].stop()
        cpu = {name: used - cpu_before[name] for name, used in cpu_use(sup, database).items()}
        wal = wal_line(wal_before, wal_use(database), args.n)
        for name, pgid in groups.items():  # the kernel's high-water marks: peaks between two samples count too
            peak[name] = max(peak[name], group_rss_mb(pgid, "VmHWM"))
        (idle, _), (during, sim_lag) = (to_provider_ms(sim_url, group, args.latency)
                                        for group in (idle_calls, calls.calls))
        calls_file = write_calls(sup.log_dir / "calls.json", idle_calls, idle, calls.calls, during)
        taken, written = taken_at(otp_log_lines(sup.log_dir)), written_calls(get_engine())
        idle_steps, during_steps = (call_steps([(c.mobile, c.posted_at, ms) for c, ms in zip(group, ms_, strict=True)],
                                               written, taken) for group, ms_ in ((idle_calls, idle), (calls.calls, during)))
        stats = requests.get(f"{sim_url}/_sim/stats", timeout=30).json()
        duplicates = stats["duplicates"]
        limit = measure(get_accounts()["bare"], "notify", CONTENT, mobiles, batch=500, concurrency=args.concurrency,
                        url=str(get_engine().url.render_as_string(hide_password=False)))
        ratio = limit.total_s / t_done
        print(("policy: " + POLICY_SHOWN + "; " if args.policy else "") + f"database: {database}; provider latency {args.latency * 1000:.0f} ms; workers ({args.pool}): bulk "
              f"{args.concurrency}, poll {POLL_CONCURRENCY}, otp {OTP_CONCURRENCY}; verification calls' right of way "
              f"{get_settings().right_of_way_ms} ms (MSGRELAY_RIGHT_OF_WAY_MS); the simulator, Redis and the database "
              "share this machine's CPU")
        print("| recipients | submit | all sent | all reported (job done) | same-run limit | limit / done "
              "| worker RSS (bulk, poll, otp) | API RSS |")
        print("|---|---|---|---|---|---|---|---|")
        print(f"| {args.n:,} | {t_submit:.1f} s | {t_sent:.1f} s | {t_done:.1f} s | {limit.total_s:.1f} s "
              f"| {ratio:.3f} (target ≥ {TARGET_RATIO}) | {peak['worker-bulk']:.0f} MB, {peak['worker-poll']:.0f} MB, "
              f"{peak['worker-otp']:.0f} MB "
              f"(target ≤ 300 each) | {peak['api']:.0f} MB (target ≤ 200) |")
        print(f"limit parts: bare sends {limit.send_s:.1f} s, bare report drain {limit.drain_s:.1f} s, "
              f"COPY of message/answer/report rows {limit.copy_s:.1f} s")
        print(f"reports applied after the last send: {args.n / max(t_done - t_sent, 1e-9):,.0f}/s on average")
        print(f"verification calls, POST to arriving at the provider: idle p50 {pct(idle, 50):.0f} ms p99 "
              f"{pct(idle, 99):.0f} ms; during the job ({len(during)} calls) p50 {pct(during, 50):.0f} ms p99 "
              f"{pct(during, 99):.0f} ms (target ≤ 200 ms and ≤ 2× idle p99 = {2 * pct(idle, 99):.0f} ms)")
        sending = [ms for c, ms in zip(calls.calls, during, strict=True) if c.posted_at < started_wall + t_sent]
        tail = during[len(sending):]
        print(f"  while sending ({len(sending)} calls): p50 {pct(sending, 50):.0f} ms p99 {pct(sending, 99):.0f} ms; "
              f"after the last send ({len(tail)} calls): p50 {pct(tail, 50):.0f} ms p99 {pct(tail, 99):.0f} ms")
        slowest = sorted(zip(during, calls.calls, strict=True), key=lambda mc: -mc[0])[:5]
        print("  the slowest: " + ", ".join(f"{ms:.0f} ms ({c.accepted_ms:.0f} to its 202) at "
                                            f"{c.posted_at - started_wall:.1f} s" for ms, c in slowest))
        print(f"  the simulator's own lag accepting them during the job (beyond its latency): p50 "
              f"{pct(sim_lag, 50):.0f} ms p99 {pct(sim_lag, 99):.0f} ms")
        print(f"  each call's times: {calls_file}")
        print(f"  of which POST to 202: idle p50 {pct([c.accepted_ms for c in idle_calls], 50):.0f} ms p99 "
              f"{pct([c.accepted_ms for c in idle_calls], 99):.0f} ms, during p50 "
              f"{pct([c.accepted_ms for c in calls.calls], 50):.0f} ms p99 "
              f"{pct([c.accepted_ms for c in calls.calls], 99):.0f} ms")
        print(steps_line(idle_steps, during_steps, pct))
        if floors:
            print(floor_line(floors["idle"].ms, floors["during"].ms, pct))
        print(cpu_line(cpu, t_done))
        if wal:
            print(wal)
        print(f"most dirty page cache during the job: {dirty:.0f} MB (the kernel writes it out in bursts that stall "
              f"commits; PostgreSQL's backend_flush_after, MSGRELAY_PG_BACKEND_FLUSH_AFTER, keeps it small)")
        print(f"simulator: {stats['accepted_recipients']:,} recipients accepted (job + bare + verification), "
              f"{duplicates} duplicates")


#: enough for a p99 that is not one or two stalls of the machine (with 20 it moved between 18 and 42 ms from run to
#: run; with 100, two stalled commits of the idle phase made it 106–620 ms in five runs of nine), and near the
#: ~400 calls made during a 1M job
IDLE_CALLS = 300
SUPPRESSED = 100_000
POLICY_SHOWN = f"send window open now, frequency cap 5/day, {SUPPRESSED:,} suppressed numbers (none in the job)"


def with_policy(accounts_file: str) -> None:
    """Give the `voice` account a send window around now, a cap, and a suppression list of other numbers."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from sqlalchemy import insert

    from models import Suppression, session_scope, utcnow
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    window = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=6)):%H:%M}"
    path = Path(accounts_file)
    path.write_text(path.read_text().replace("[accounts.voice]\n", f'[accounts.voice]\nsend_window = "{window}"\n'
                                                                   'frequency_cap = "5/day"\n', 1))
    with session_scope() as session:
        created = utcnow()
        session.execute(insert(Suppression.__table__), [
            {"scope": "*", "mobile": f"15{i:09d}", "reason": "bench", "source": "api", "created_at": created}
            for i in range(SUPPRESSED)])


def post(api: str, body: dict) -> int:
    """POST /v1/jobs; the job id."""
    resp = requests.post(f"{api}/v1/jobs", json=body, timeout=600)
    resp.raise_for_status()
    return resp.json()["id"]


@dataclass(frozen=True)
class Call:
    """One verification call: its mobile, when it was posted (wall clock) and milliseconds to its 202."""

    mobile: str
    posted_at: float
    accepted_ms: float


def verification_call(api: str, mobile: str) -> Call:
    """POST /v1/jobs of one vfcode, then a pause of 0.2 s (a producer does not poll at hundreds of requests a
    second: when the call reached the provider is read from the simulator's records afterwards)."""
    posted_at, started = time.time(), time.perf_counter()
    post(api, {"account": "voice", "kind": "vfcode", "content": "123456", "recipients": [mobile]})
    call = Call(mobile, posted_at, (time.perf_counter() - started) * 1000)
    time.sleep(0.2)
    return call


def to_provider_ms(sim_url: str, calls: Sequence[Call], latency_s: float) -> tuple[list[float], list[float]]:
    """Milliseconds from each call's POST to its request reaching the provider (the simulator's own record of
    when the request it accepted arrived: same clock, before the latency it injects), and how long the simulator
    itself then took beyond that latency to accept it (its event loop is busy with the bulk job too)."""
    deadline = time.monotonic() + 60
    while True:  # the last call may still be on its way
        records = requests.get(f"{sim_url}/_sim/requests", params={"endpoint": VFCODE_ENDPOINT}, timeout=60).json()
        arrived = {r["mobile"]: (record["arrived_at"], record["at"]) for record in records
                   for r in record["recipients"]}
        missing = [c.mobile for c in calls if c.mobile not in arrived]
        if not missing:
            return ([(arrived[c.mobile][0] - c.posted_at) * 1000 for c in calls],
                    [(arrived[c.mobile][1] - arrived[c.mobile][0] - latency_s) * 1000 for c in calls])
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(missing)} verification calls never reached the provider: {missing[:5]}")
        time.sleep(0.5)


class OtpCalls:
    """Verification calls one after another (a pause of 0.2 s between) while the bulk job runs, made by a process of
    their own: a producer is another program, and a thread here would share this process's interpreter with its
    sampling of memory and progress (a call then waited for the sampler's turn before its request left)."""

    def __init__(self, api: str) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of this one's threads
        self.calls: list[Call] = []
        self._stop, self._results = context.Event(), context.Queue()
        self._process = context.Process(target=call_until, args=(api, self._stop, self._results), daemon=True)

    def start(self) -> None:
        """Begin calling."""
        self._process.start()

    def stop(self) -> None:
        """Stop after the call in flight; its calls are then in `calls`."""
        self._stop.set()
        self.calls = self._results.get(timeout=120)
        self._process.join(timeout=30)


def call_until(api: str, stop, results) -> None:
    """Make verification calls until `stop` is set, then put them all on `results` (a process's target)."""
    calls, i = [], 0
    while not stop.is_set():
        calls.append(verification_call(api, f"1370{i:07d}"))
        i += 1
    results.put(calls)


def write_calls(path: Path, idle_calls: Sequence[Call], idle_ms: Sequence[float], calls: Sequence[Call],
                during_ms: Sequence[float]) -> Path:
    """Write every verification call's mobile, POST time (Unix seconds), ms to its 202 and ms to the provider, idle
    and during the job, as JSON (to trace the slow ones through the workers' logs and the database)."""
    path.write_text(json.dumps({phase: [{**asdict(c), "to_provider_ms": ms} for c, ms in zip(group, ms_, strict=True)]
                                for phase, group, ms_ in (("idle", idle_calls, idle_ms), ("during", calls, during_ms))}))
    return path


def pct(values, p: int) -> float:
    """The p-th percentile (nearest rank); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


if __name__ == "__main__":
    main()
