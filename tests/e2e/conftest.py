"""The real stack for end-to-end tests: the simulator over HTTP, a Celery worker (with beat) on real Redis."""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from msgrelay.cli.processes import Supervisor, free_port, http_ok, msgrelay_argv, wait_for
from tests.conftest import REDIS_URL, TEST_DIR, zone_at

SECRET_VOICE = "0123456789abcdef"
SECRET_JOIN = "fedcba9876543210abcdef0123456789"
CALLBACK_TOKEN = "cb-token-Zq81xWv"
SMS_PASSWORD = "sms-pass-Xy12"
MMS_API_KEY = "mms-key-3f9a77c2d1"
MMS_CALLBACK_TOKEN = "mms-cb-Q7e2Lk"


#: the `windowed` account's marketing window; at 03:00 in its zone (set at session start) it is shut for hours
WINDOW = "09:00-20:00"


def accounts_toml(sim_url: str, *, window_zone: str | None = None) -> str:
    """Accounts the simulator knows, plus one it does not (wrong secret) for credential errors. The accounts whose
    replies tests count keep no opt-out words (a simulated "TD" reply would suppress a number other tests reuse);
    `smsoptout` and `mms` keep the defaults."""
    return f"""
[accounts.voice]
provider = "emay_voice"
base_url = "{sim_url}"
app_id = "EUCP-EMY-TEST-VOICE"
secret_key = "{SECRET_VOICE}"
callback_token = "{CALLBACK_TOKEN}"

[accounts.voicesms]
provider = "emay_voice_sms"
base_url = "{sim_url}"
app_id = "EUCP-EMY-TEST-JOIN"
secret_key = "{SECRET_JOIN}"

[accounts.pushed]
provider = "emay_voice"
base_url = "{sim_url}"
app_id = "EUCP-EMY-TEST-PUSH"
secret_key = "abcdef0123456789"
callback_token = "push-token-7Hk2"
poll_reports = false

[accounts.ims]
provider = "emay_ims"
base_url = "{sim_url}"
app_id = "EUCP-EMY-TEST-IMS"
secret_key = "9988776655443322"

[accounts.sms]
provider = "qyxs_sms"
base_url = "{sim_url}"
userid = "12"
account = "smsuser"
password = "{SMS_PASSWORD}"
opt_out_keywords = []

[accounts.sms200]
provider = "qyxs_sms"
base_url = "{sim_url}"
userid = "13"
account = "reseller"
password = "reseller-pass-1"
max_batch = 200
opt_out_keywords = []

[accounts.smscheck]
provider = "qyxs_sms"
base_url = "{sim_url}"
userid = "14"
account = "checked"
password = "checked-pass-1"
check_content = true
opt_out_keywords = []

[accounts.mms]
provider = "ihuyi_mms"
base_url = "{sim_url}"
api_id = "2RYN7CQHL1M"
api_key = "{MMS_API_KEY}"
product_id = 1001
callback_token = "{MMS_CALLBACK_TOKEN}"

[accounts.metered]
provider = "emay_voice"
base_url = "{sim_url}"
app_id = "EUCP-EMY-TEST-METER"
secret_key = "5555666677778888"
balance_per_recipient = 1

[accounts.throttled]
provider = "emay_voice"
base_url = "{sim_url}"
app_id = "EUCP-EMY-TEST-THROTTLE"
secret_key = "9999000011112222"
max_batch = 50
rate_limit = 4

[accounts.limited]
provider = "emay_voice"
base_url = "{sim_url}"
app_id = "EUCP-EMY-TEST-LIMIT"
secret_key = "1111222233334444"
max_batch = 100
rate_limit = 20

[accounts.windowed]
provider = "emay_voice"
base_url = "{sim_url}"
app_id = "EUCP-EMY-TEST-WINDOW"
secret_key = "4444333322221111"
send_windows = {{marketing = "{WINDOW}"}}
timezone = "{window_zone or zone_at(3)}"

[accounts.capped]
provider = "emay_voice"
base_url = "{sim_url}"
app_id = "EUCP-EMY-TEST-CAPPED"
secret_key = "7777888899990000"
frequency_cap = "3/day"
max_batch = 10

[accounts.smsoptout]
provider = "qyxs_sms"
base_url = "{sim_url}"
userid = "15"
account = "optout"
password = "optout-pass-1"

# routes (issue 12): a failover pair and a 3:1 split, each over two Emay voice accounts of their own
[accounts.ra]
provider = "emay_voice"
base_url = "{sim_url}"
app_id = "EUCP-EMY-TEST-ROUTEA"
secret_key = "a1a1a1a1a1a1a1a1"
max_batch = 500

[accounts.rb]
provider = "emay_voice"
base_url = "{sim_url}"
app_id = "EUCP-EMY-TEST-ROUTEB"
secret_key = "b2b2b2b2b2b2b2b2"
max_batch = 500

[accounts.wa]
provider = "emay_voice"
base_url = "{sim_url}"
app_id = "EUCP-EMY-TEST-WEIGHA"
secret_key = "c3c3c3c3c3c3c3c3"
max_batch = 10

[accounts.wb]
provider = "emay_voice"
base_url = "{sim_url}"
app_id = "EUCP-EMY-TEST-WEIGHB"
secret_key = "d4d4d4d4d4d4d4d4"
max_batch = 10

[routes.pair]
accounts = ["ra", "rb"]

[routes.split]
accounts = ["wa", "wb"]
mode = "weighted"
weights = [3, 1]
"""


@dataclass
class Sim:
    """The simulator's control routes."""

    url: str

    def get(self, what: str, **params) -> dict | list:
        return requests.get(f"{self.url}/_sim/{what}", params=params, timeout=10).json()

    def post(self, what: str, body: dict | None = None) -> None:
        requests.post(f"{self.url}/_sim/{what}", json=body or {}, timeout=10).raise_for_status()

    def recipients(self, prefix: str) -> list[str]:
        """Custom ids of every accepted recipient whose custom id starts with `prefix` (one job), repeats kept."""
        return [r["custom_id"] for req in self.get("requests") for r in req["recipients"]
                if (r.get("custom_id") or "").startswith(prefix)]

    def requests_for(self, prefix: str) -> list[dict]:
        return [req for req in self.get("requests")
                if any((r.get("custom_id") or "").startswith(prefix) for r in req["recipients"])]


@dataclass
class Worker:
    """A `msgrelay worker --beat` process that tests may kill and restart."""

    sup: Supervisor
    env: dict[str, str]
    n: int = 0

    def start(self) -> None:
        self.n += 1
        # its own beat schedule: the other pass's beat runs at the same time from the same directory
        self.sup.start(f"worker{self.n}", msgrelay_argv(
            "worker", "--beat", "--schedule-file", str(self.sup.log_dir / f"beat-schedule-{self.n}"),
            "--concurrency", "2", "--loglevel", "INFO"), self.env)
        log = self.sup.log_dir / f"worker{self.n}.log"
        wait_for(lambda: b"ready." in log.read_bytes(), what="the Celery worker", timeout_s=60)

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once."""
        proc = self.sup.children.pop(f"worker{self.n}")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def freeze(self) -> None:
        """SIGSTOP the worker and its pool children at once: none of them acts again until `thaw` (or `kill`)."""
        os.killpg(self.sup.children[f"worker{self.n}"].pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT what `freeze` stopped."""
        os.killpg(self.sup.children[f"worker{self.n}"].pid, signal.SIGCONT)

    def health(self) -> str:
        """When the worker's log last showed beat sending each poll and the worker running it (for a failed test's
        report: a job stuck before its reports tells a stopped beat from a stopped queue)."""
        log = self.sup.log_dir / f"worker{self.n}.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        now = time.time()

        def ago(marker: str) -> str:
            for line in reversed(lines):
                if marker in line and line.startswith("["):
                    stamp = time.mktime(time.strptime(line[1:20], "%Y-%m-%d %H:%M:%S"))
                    return f"{now - stamp:.0f} s ago"
            return "never"
        checks = {"beat sent poll-reports": "Sending due task poll-reports", "beat sent sweep": "Sending due task sweep",
                  "a poll_reports ran": "tasks.poll_reports[", "a sweep ran": "tasks.sweep[",
                  "a send_chunk ran": "tasks.send_chunk[", "a task was dropped as expired": "Discarding revoked"}
        return "; ".join(f"{what}: {ago(marker)}" for what, marker in checks.items()) + f" (worker{self.n}.log)"

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.sup.log_dir.glob("*.log")))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failed end-to-end test's report also says when beat and the worker last did their rounds."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and _RUNNING:
        report.sections.append(("the stack's worker and beat", _RUNNING[0][1].health()))


#: the session's one stack, shared with tests/webhooks (whose conftest imports these fixtures: pytest then holds
#: a second `stack` fixture, which must find this one running instead of starting another worker and beat)
_RUNNING: list[tuple[Sim, Worker]] = []


@pytest.fixture(scope="session")
def stack(database: str) -> Iterator[tuple[Sim, Worker]]:
    """Simulator + worker, started once for the session."""
    if _RUNNING:
        yield _RUNNING[0]
        return
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    Path(os.environ["MSGRELAY_ACCOUNTS_FILE"]).write_text(accounts_toml(sim_url), encoding="utf-8")
    sup = Supervisor(TEST_DIR / "logs")
    env = dict(os.environ)
    sup.start("simulator", msgrelay_argv("simulate", "--port", str(sim_port), "--report-delay", "0.3"), env)
    wait_for(lambda: http_ok(sim_url + "/_sim/stats"), what="the simulator")
    worker = Worker(sup, env)
    worker.start()
    _RUNNING.append((Sim(sim_url), worker))
    try:
        yield _RUNNING[0]
    finally:
        _RUNNING.clear()
        sup.stop_all(timeout_s=10)
        client.flushdb()


@pytest.fixture(scope="session")
def live_api(stack) -> Iterator[str]:
    """The real API process (uvicorn) on a free port, so the simulator can push to it over HTTP."""
    port = free_port()
    sup = Supervisor(TEST_DIR / "logs")
    sup.start("api-live", msgrelay_argv("api", "--port", str(port)), dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_ok(url + "/healthz"), what="the API", timeout_s=60)
    yield url
    sup.stop_all(timeout_s=10)


@pytest.fixture
def sim(stack) -> Sim:
    """The simulator, reset before the test."""
    s = stack[0]
    s.post("reset")
    return s


@pytest.fixture
def worker(stack) -> Worker:
    return stack[1]


def wait_until(check: Callable[[], bool], *, timeout_s: float = 60, what: str | Callable[[], str] = "condition") -> None:
    """Poll `check` until true; fail the test with `what` (a text, or a function giving one) on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what() if callable(what) else what}")


def job_view(job_id: int) -> dict:
    from models import session_scope
    from msgrelay.jobs import view_job
    with session_scope() as session:
        return view_job(session, job_id).as_dict()


def wait_done(job_id: int, timeout_s: float = 60) -> dict:
    """Wait for the job to be done; returns its view."""
    wait_until(lambda: job_view(job_id)["status"] == "done", timeout_s=timeout_s,
               what=lambda: f"job {job_id} done (last: {job_view(job_id)})")
    return job_view(job_id)


def job_uid(job_id: int) -> str:
    from models import Job, session_scope
    with session_scope() as session:
        return session.get(Job, job_id).uid


def mobiles(prefix: str, n: int) -> list[str]:
    """`n` mainland mobiles: `prefix` (three digits) followed by an eight-digit counter."""
    return [f"{prefix}{i:08d}" for i in range(n)]


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    """`counts` without its zero entries."""
    return {k: v for k, v in counts.items() if v}


@pytest.fixture(scope="module")
def api() -> Iterator:
    """The API in this process (FastAPI's TestClient), one per test module."""
    from fastapi.testclient import TestClient

    from api.app import app
    with TestClient(app) as client:
        yield client


def chunk_rows(job_id: int) -> list[dict]:
    """The job's chunks (every column), in id order."""
    from sqlalchemy import select

    from models import Chunk, session_scope
    with session_scope() as session:
        return [chunk.model_dump() for chunk in session.scalars(select(Chunk).where(Chunk.job_id == job_id)
                                                                .order_by(Chunk.id))]


def message_rows(job_id: int, lo: int = 0, hi: int | None = None) -> list[dict]:
    """The job's messages with `lo <= seq < hi` (all by default), in seq order."""
    from sqlalchemy import select

    from models import Message, session_scope
    query = select(Message).where(Message.job_id == job_id, Message.seq >= lo).order_by(Message.seq)
    if hi is not None:
        query = query.where(Message.seq < hi)
    with session_scope() as session:
        return [m.model_dump(exclude={"content"}) for m in session.scalars(query)]


def held_answers(sim: Sim, endpoint: str) -> list[dict]:
    """The answers the simulator holds right now (`answer_delay_s`, stalls) on `endpoint`."""
    return [h for h in sim.get("stats")["answers_held"] if h["endpoint"] == endpoint]
