"""Webhooks end to end: one job of N notify recipients through the API, `bulk`, `poll` and `webhooks` workers,
beat and the simulator, its ~2N events delivered to a local receiver; the same job again without a receiver.
Prints events/s (submit → last event acknowledged) and how much the job itself slowed with webhooks on.

    python -m benchmarks.bench_webhooks [N] [--latency S] [--only on|off|store]   (MSGRELAY_BENCH_DB=postgresql)
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import threading
import time
from typing import Any

import requests

from benchmarks.bench_send import CONTENT, post
from benchmarks.harness import bench_env, cpu_line, cpu_seconds, cpu_use, group_rss_mb
from msgrelay.cli.priority import change_priority, nice_argv
from msgrelay.cli.processes import free_port, http_ok, msgrelay_argv, wait_for
from msgrelay.webhooks.listener import LocalReceiver

SECRET = "bench-webhook-secret"
BULK_CONCURRENCY, POLL_CONCURRENCY, WEBHOOK_CONCURRENCY = 8, 4, 4  # docker-compose.yml


class CountingReceiver(LocalReceiver):
    """A local receiver that verifies every signature and counts distinct event ids (and repeats) into `counts`."""

    def __init__(self, counts: Any) -> None:
        self.ids: set[int] = set()
        self.counts = counts
        super().__init__([SECRET], self._count)

    def _count(self, ok: bool, events: list[dict]) -> None:
        ids = [int(e["id"][4:]) for e in events]
        with self.counts.get_lock():
            before = len(self.ids)
            self.ids.update(ids)
            c = self.counts
            c[DISTINCT], c[REPEATS] = len(self.ids), c[REPEATS] + len(ids) - (len(self.ids) - before)
            c[REQUESTS], c[BAD], c[LAST_AT] = c[REQUESTS] + 1, c[BAD] + (not ok), time.perf_counter()


DISTINCT, REPEATS, REQUESTS, BAD, LAST_AT = range(5)


class ReceiverProcess:
    """The counting receiver in a process and session of its own at niceness 19: the producer's receiver runs on
    its own machine in production, so here it takes only CPU that msgrelay leaves (3–5 s of a 1M run)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.counts = ctx.Array("d", 5)
        ready = ctx.Queue()
        self.process = ctx.Process(target=_serve, args=(self.counts, ready), daemon=True)
        self.process.start()
        self.url = ready.get(timeout=30)

    def count(self, field: int) -> float:
        """One of the counters."""
        with self.counts.get_lock():
            return self.counts[field]

    def stop(self) -> None:
        """End the receiver's process."""
        self.process.terminate()
        self.process.join(10)


def _serve(counts: Any, ready: Any) -> None:
    """The receiver process: its own session at niceness 19, then serve until terminated."""
    os.setsid()
    change_priority(19)
    ready.put(CountingReceiver(counts).url)
    threading.Event().wait()


def _cpu_use(sup: Any, database: str, receiver: ReceiverProcess | None) -> dict[str, float]:
    """The stack's CPU seconds so far, the receiver's process included."""
    used = cpu_use(sup, database)
    if receiver:
        used["receiver"] = cpu_seconds(pgid=receiver.process.pid)
    return used


def run(n: int, latency: float, webhooks: bool, deliver: bool = True) -> dict:
    """One job of `n` recipients; its timings (and the webhooks' when on). `deliver=False`: events are written
    (the triggers' cost) but no worker sends them."""
    receiver = ReceiverProcess() if webhooks else None
    try:
        return _run(n, latency, receiver, deliver)
    finally:
        if receiver:
            receiver.stop()


def _run(n: int, latency: float, receiver: ReceiverProcess | None, deliver: bool) -> dict:
    """`run` with its receiver (None: webhooks off)."""
    webhooks = receiver is not None
    os.environ.pop("MSGRELAY_WEBHOOK_URL", None)
    os.environ["MSGRELAY_WEBHOOK_SECRET"] = SECRET
    if receiver:
        os.environ["MSGRELAY_WEBHOOK_URL"] = receiver.url
    with bench_env(report_delay_s=1.0) as (sup, env, sim_url):
        api = f"http://127.0.0.1:{free_port()}"
        sup.start("api", msgrelay_argv("api", "--port", api.rsplit(":", 1)[1], *nice_argv()), env)
        workers = {"worker-bulk": ("bulk", BULK_CONCURRENCY), "worker-poll": ("poll", POLL_CONCURRENCY)}
        if webhooks and deliver:
            workers["worker-webhooks"] = ("webhooks", WEBHOOK_CONCURRENCY)
        for name, (queues, concurrency) in workers.items():
            sup.start(name, msgrelay_argv("worker", "--queues", queues, "--concurrency", str(concurrency),
                                          *nice_argv(queues)), env)  # as compose and `msgrelay up` run them
        sup.start("beat", msgrelay_argv("beat", "--schedule-file", str(sup.log_dir / "beat-schedule")), env)
        for name in workers:
            log = sup.log_dir / f"{name}.log"
            wait_for(lambda: b"ready." in log.read_bytes(), what=name, timeout_s=60)
        wait_for(lambda: http_ok(api + "/healthz"), what="api")
        requests.post(f"{sim_url}/_sim/faults", json={"latency_s": latency}, timeout=5).raise_for_status()
        from sqlalchemy import func, select

        from models import WebhookEvent, get_engine, session_scope
        database = get_engine().dialect.name
        cpu_before = _cpu_use(sup, database, receiver)
        started = time.perf_counter()
        job = post(api, {"account": "voice", "kind": "notify", "content": CONTENT,
                         "recipients": [f"13{i:09d}" for i in range(n)]})
        t_sent = t_done = t_events = made = None
        peak = 0.0
        while time.perf_counter() - started < 3600:
            if webhooks and deliver:
                peak = max(peak, group_rss_mb(sup.children["worker-webhooks"].pid))
            if t_done is None:
                view = requests.get(f"{api}/v1/jobs/{job}", timeout=30).json()
                if t_sent is None and view["counts"]["queued"] == 0:
                    t_sent = time.perf_counter() - started
                if view["status"] == "done":
                    t_done = time.perf_counter() - started
            if t_done is not None and not (webhooks and deliver):
                break
            if t_done is not None:
                if made is None:  # once: a done job makes no more events (a count scans the outbox)
                    with session_scope() as session:
                        made = session.scalar(select(func.count()).select_from(WebhookEvent)
                                              .where(WebhookEvent.job_id == job))
                if receiver.count(DISTINCT) >= made:
                    t_events = receiver.count(LAST_AT) - started
                    break
            time.sleep(0.25)
        cpu = {name: used - cpu_before[name] for name, used in _cpu_use(sup, database, receiver).items()}
        out = {"database": database, "n": n, "job_done_s": t_done, "all_sent_s": t_sent,
               "cpu": cpu_line(cpu, time.perf_counter() - started).replace("the job", "the run")}
        if webhooks and deliver:
            out.update(events=int(receiver.count(DISTINCT)), events_s=t_events,
                       repeats=int(receiver.count(REPEATS)), requests=int(receiver.count(REQUESTS)),
                       bad_signatures=int(receiver.count(BAD)), webhook_worker_mb=peak)
        return out


def main() -> None:
    """Run the job with webhooks on, then off, and print both."""
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=200_000)
    ap.add_argument("--latency", type=float, default=0.05, help="simulated provider round trip, seconds")
    ap.add_argument("--only", choices=("on", "off", "store"),
                    help="one run only; store: events written by the triggers, none delivered")
    args = ap.parse_args()
    if args.only == "store":
        stored = run(args.n, args.latency, True, deliver=False)
        print(f"database: {stored['database']}; {args.n:,} recipients; events stored, not delivered: all sent "
              f"{stored['all_sent_s']:.1f} s, job done {stored['job_done_s']:.1f} s")
        print(f"  {stored['cpu']}")
        return
    runs = {mode: run(args.n, args.latency, mode == "on") for mode in ("on", "off") if args.only in (None, mode)}
    on, off = runs.get("on"), runs.get("off")
    first = on or off
    print(f"database: {first['database']}; {args.n:,} recipients; provider latency {args.latency * 1000:.0f} ms")
    if on:
        print(f"webhooks on: all sent {on['all_sent_s']:.1f} s, job done {on['job_done_s']:.1f} s; "
              f"{on['events']:,} events acknowledged in "
              f"{on['events_s']:.1f} s ({on['events'] / on['events_s']:,.0f} events/s from submit), "
              f"{on['requests']:,} requests, {on['repeats']} repeats, {on['bad_signatures']} bad signatures, "
              f"webhooks worker {on['webhook_worker_mb']:.0f} MB")
    if on:
        print(f"  {on['cpu']} (the receiver at niceness 19)")
    if off:
        print(f"webhooks off: all sent {off['all_sent_s']:.1f} s, job done {off['job_done_s']:.1f} s")
        print(f"  {off['cpu']}")
    if on and off:
        print(f"job time with webhooks / without: {on['job_done_s'] / off['job_done_s']:.3f} (target ≤ 1.10); "
              f"last event / job done without webhooks: {on['events_s'] / off['job_done_s']:.3f}")


if __name__ == "__main__":
    main()
