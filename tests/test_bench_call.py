"""`benchmarks.bench_call`, scaled down (the run of record makes 300 calls on PostgreSQL): a real API, otp worker,
Redis and simulator, on SQLite; each part's CPU a call is measured and every call reaches the provider once."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import TEST_DB

pytestmark = pytest.mark.skipif(TEST_DB == "postgresql", reason="it resets its own database: SQLite's pass runs it")

CALLS = 12
WARM_UP = 20  # bench_call's own warm-up calls


def test_bench_call_prints_each_part_and_every_call_arrives():
    # given / when: the benchmark with a few calls, on a throw-away stack of its own
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGRELAY_")}  # the benchmark sets its own
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_call", str(CALLS)], capture_output=True,
                          text=True, timeout=300, env=env)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    # then: a row per part with a CPU figure, and the calls all arrived, once each
    parts = dict(re.findall(r"^\| (api|worker-otp|simulator) \| (-?[\d.]+) ms \|", out, re.M))
    assert set(parts) == {"api", "worker-otp", "simulator"}, out
    assert float(parts["worker-otp"]) > 0 and float(parts["api"]) > 0, out
    assert f"{CALLS} of {CALLS} calls reached the provider" in out, out
    assert f"simulator: {CALLS + WARM_UP:,} recipients accepted, 0 duplicates" in out, out
