"""The same-run limit: the work of a job done bare, with nothing of msgrelay around it.

Three parts, timed apart and added: the job's send requests (built by the same provider class, one per
chunk) fired by bare pooled HTTP clients at the workers' concurrency; the reports of those requests drained
from the simulator by a bare client and parsed; and `COPY` of the same message, answer and report rows into
index-free temporary tables. Their sum is what the work strictly needs on this machine; `limit / done` says
how close msgrelay comes to it.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

import requests

from providers.base import Provider, Recipient, SendSpec
from providers.registry import get_provider


@dataclass(frozen=True)
class Limit:
    """Seconds each bare part took, and their sum."""

    send_s: float
    drain_s: float
    copy_s: float

    @property
    def total_s(self) -> float:
        """What the job strictly needs."""
        return self.send_s + self.drain_s + self.copy_s


def bare_send(account, kind: str, content: str, mobiles: list[str], *, batch: int, concurrency: int) -> float:
    """Seconds to send every mobile in requests of `batch`, built by the provider, from `concurrency` threads."""
    provider: Provider = get_provider(account.provider)
    spec = SendSpec(kind=kind, content=content, options={}, send_at=None)
    local = threading.local()

    def one(start: int) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        people = [Recipient(mobile=m, custom_id=f"bare{start + i:012d}", content=None)
                  for i, m in enumerate(mobiles[start:start + batch])]
        req = provider.build_send(account, spec, people, datetime.now(timezone.utc))
        provider.parse_send(spec, people, _http_response(session, account.base_url, req))  # raises on a refusal

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(0, len(mobiles), batch)))
    return time.perf_counter() - started


def bare_drain(account, expected: int, *, timeout_s: float = 600) -> tuple[float, list]:
    """Seconds to drain and parse `expected` reports of the account (a bare keep-alive client); the reports."""
    provider: Provider = get_provider(account.provider)
    session = requests.Session()
    reports: list = []
    started = time.perf_counter()
    while len(reports) < expected and time.perf_counter() - started < timeout_s:
        req = provider.build_report_query(account, datetime.now(timezone.utc))
        page = provider.parse_reports(_http_response(session, account.base_url, req))
        reports += page
        if not page:
            time.sleep(0.05)  # not ready yet (the simulator's report delay)
    return time.perf_counter() - started, reports


def _http_response(session: requests.Session, base_url: str, req):
    from providers.values import HttpResponse
    resp = session.request(req.method, base_url.rstrip("/") + req.path, data=req.form, json=req.json,
                           headers=dict(req.headers), timeout=(5, 60))
    resp.raise_for_status()
    resp.encoding = resp.encoding or "utf-8"
    return HttpResponse(status=resp.status_code, text=resp.text, headers=dict(resp.headers))


def copy_rows(url: str, mobiles: list[str], reports: list, content: str) -> float:
    """Seconds to COPY the job's message rows, its answer rows and its report rows (PostgreSQL; SQLite: one
    executemany INSERT each) into index-free temporary tables, committed."""
    from sqlalchemy import create_engine
    engine = create_engine(url)
    now = datetime.now(timezone.utc)
    messages = [(1, i, m, content, f"bare{i:012d}", "queued", now) for i, m in enumerate(mobiles)]
    answers = [(i + 1, "submitted", f"P{i:012d}", now) for i in range(len(mobiles))]
    raws = [("voice", "emay_voice", "poll", r.provider_msg_id, r.custom_id, r.mobile, str(r.status), r.state,
             r.desc, r.reported_at, "{}", now) for r in reports]
    message_cols = ("job_id int, seq int, mobile varchar(32), content text, custom_id varchar(64), "
                    "status varchar(16), updated_at timestamptz")
    answer_cols = "id bigint, status varchar(16), provider_msg_id varchar(64), submitted_at timestamptz"
    report_cols = ("account varchar(64), provider varchar(32), source varchar(8), provider_msg_id varchar(64), "
                   "custom_id varchar(64), mobile varchar(32), status varchar(16), state varchar(64), "
                   "\"desc\" varchar(255), reported_at timestamptz, payload text, received_at timestamptz")
    tables = {"bare_message": (message_cols, messages), "bare_answer": (answer_cols, answers),
              "bare_report": (report_cols, raws)}
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for name, (columns, _) in tables.items():
            cur.execute(f"CREATE TEMP TABLE {name} ({columns})")
        raw.commit()
        started = time.perf_counter()
        for name, (_, rows) in tables.items():
            if engine.dialect.name == "postgresql":
                with raw.driver_connection.cursor().copy(f"COPY {name} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                width = len(rows[0]) if rows else 0
                cur.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * width)})",
                                [tuple(v.isoformat() if isinstance(v, datetime) else v for v in r) for r in rows])
        raw.commit()
        return time.perf_counter() - started
    finally:
        raw.close()
        engine.dispose()


def measure(account, kind: str, content: str, mobiles: list[str], *, batch: int, concurrency: int,
            url: str) -> Limit:
    """Send, drain and copy bare; the three timings."""
    send_s = bare_send(account, kind, content, mobiles, batch=batch, concurrency=concurrency)
    drain_s, reports = bare_drain(account, len(mobiles))
    return Limit(send_s, drain_s, copy_rows(url, mobiles, reports, content))

