"""The console's pure parts: the chart, the funnel, balance warnings, and the send-rate counters (real Redis)."""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import redis

from api.console.chart import svg
from api.console.queries import balance_warning, funnel
from msgrelay import send_rate

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)
ZERO = dict.fromkeys(("queued", "submitted", "delivered", "failed", "expired", "rejected", "unknown"), 0)


def counts(**kw: int) -> dict[str, int]:
    return {**ZERO, **kw}


@pytest.mark.parametrize("given, expected", [
    (counts(queued=10), [("recipients", 10), ("handed to the provider", 0), ("reported", 0), ("delivered", 0)]),
    (counts(submitted=4, delivered=3, failed=2, expired=1), [("recipients", 10), ("handed to the provider", 10),
                                                             ("reported", 6), ("delivered", 3)]),
    (counts(rejected=5, unknown=2, delivered=3), [("recipients", 10), ("handed to the provider", 3),
                                                  ("reported", 3), ("delivered", 3)]),
])
def test_funnel(given, expected):
    assert funnel(given, 10) == expected


def test_chart_draws_three_lines_scaled_to_the_job():
    drawn = svg([(T0, counts()), (T0 + timedelta(seconds=10), counts(submitted=50)),
                 (T0 + timedelta(seconds=20), counts(delivered=80, failed=20))], 100)
    assert drawn.count("<polyline") == 3 and "10:00:00" in drawn and "10:00:20 UTC (20 s)" in drawn
    sent = drawn.split('class="line sent" points="')[1].split('"')[0].split()
    assert sent[0].endswith(",192.0") and sent[-1].endswith(",12.0")  # 0 at the bottom, all 100 at the top


def test_chart_of_a_job_with_one_point_in_time():
    assert svg([(T0, counts()), (T0, counts(rejected=1))], 1).count("<polyline") == 3


def account(low: float | None = None):
    return SimpleNamespace(low_balance=low)


@pytest.mark.parametrize("low, value, age_s, warning", [
    (None, "100", 0, None), (None, "0", 0, "empty"), (None, "-3", 0, "empty"), (50, "50", 0, "low (at or below 50)"),
    (50, "50.01", 0, None), (None, "100", 3600, "stale"), (None, "100", 100, None),
])
def test_balance_warning(low, value, age_s, warning):
    # now, not at import: a slow suite can reach this test more than the 900 s staleness limit after collection
    balance = {"value": value, "taken_at": (datetime.now(timezone.utc) - timedelta(seconds=age_s)).isoformat()}
    assert balance_warning(account(low), balance, timedelta(seconds=900)) == warning
    assert balance_warning(account(low), None, timedelta(seconds=900)) is None


def test_send_rate_counts_per_second_across_processes():
    client = redis.Redis.from_url(os.environ.get("MSGRELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    now, name = 1_800_000_000.5, f"acct-{uuid.uuid4().hex[:8]}"
    for second, n in ((-70, 1000), (-30, 300), (-5, 40), (-1, 60), (0, 7)):
        send_rate.count(name, n, client=client, now=now + second)
    send_rate.count(name, 0, client=client, now=now)
    got = send_rate.rates([name, "acct-idle"], client=client, now=now)
    # the current second is not whole yet, and what is older than a minute is out
    assert got == {name: {"per_s": 10.0, "last_minute": 400.0}, "acct-idle": {"per_s": 0.0, "last_minute": 0.0}}
    assert 0 < client.ttl(f"msgrelay:sent:{name}:{int(now)}") <= send_rate.KEEP_S
