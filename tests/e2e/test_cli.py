"""The CLI against the running stack: send --wait, job, jobs, balance, pause/resume/cancel, bad input."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import job_uid

pytestmark = pytest.mark.e2e


def msgrelay(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "msgrelay.cli", *args], env={**os.environ, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=timeout)


def test_send_wait_shows_progress_and_ends_done(sim, tmp_path):
    numbers = tmp_path / "to.txt"
    numbers.write_text("\n".join(f"1330000{i:04d}" for i in range(600)) + "\n")
    out = msgrelay("send", "voice", "marketing", "--to", str(numbers), "--content", "周末特惠", "--option",
                   "isInteractive=0", "--wait")
    assert out.returncode == 0, out.stderr
    assert "600 recipients in 2 chunks" in out.stdout
    assert "done" in out.stdout and "delivered=" in out.stdout
    job_id = int(out.stdout.split("job ")[1].split(":")[0])
    assert len(sim.recipients(job_uid(job_id))) == 600
    listing = msgrelay("jobs")
    assert listing.returncode == 0 and str(job_id) in listing.stdout


def test_send_bad_input_names_the_field_and_sends_nothing(sim):
    out = msgrelay("send", "voice", "vfcode", "--to", "13800000000", "--content", "12345")
    assert out.returncode == 2
    assert "content:" in out.stderr and "4 or 6" in out.stderr
    out = msgrelay("send", "voice", "notify", "--to", "13800000000", "--content", "hi", "--option", "speed")
    assert out.returncode == 2 and "--option" in out.stderr
    assert sim.get("requests") == []


def test_balance_pause_resume_cancel(sim):
    out = msgrelay("balance")
    assert out.returncode == 0 and "voice" in out.stdout and "1000000000" in out.stdout
    sim.post("faults", {"latency_s": 1.0})  # 50 requests of a second each: still sending when cancel comes
    sent = msgrelay("send", "limited", "notify", "--to", ",".join(f"1320000{i:04d}" for i in range(5000)),
                    "--content", "通知")
    assert sent.returncode == 0, sent.stderr
    job_id = sent.stdout.split("job ")[1].split(":")[0]
    assert "paused" in msgrelay("pause", job_id).stdout
    assert "running" in msgrelay("resume", job_id).stdout
    assert "cancelled" in msgrelay("cancel", job_id).stdout
    again = msgrelay("cancel", job_id)
    assert again.returncode == 2 and "already cancelled" in again.stderr
    missing = msgrelay("job", "987654")
    assert missing.returncode == 2 and "no job 987654" in missing.stderr
