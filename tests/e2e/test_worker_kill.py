"""A worker SIGKILLed in the middle of a job: nobody is sent twice, and the job completes on a new worker."""
from __future__ import annotations

from collections import Counter

import pytest
import requests

from tests.e2e.conftest import SECRET_JOIN, SECRET_VOICE, job_uid, wait_done, wait_until

pytestmark = pytest.mark.e2e


def test_sigkill_mid_job_no_duplicates_and_job_completes(sim, worker):
    # given a slow provider and a 6,000-recipient job (12 requests) under way
    from tasks import submit
    sim.post("faults", {"latency_s": 0.4})
    done = submit("voice", "notify", [f"135{i:08d}" for i in range(6000)], content="通知")
    uid = job_uid(done.id)
    wait_until(lambda: len(sim.requests_for(uid)) >= 2, what="a couple of requests sent")
    # when the worker and its pool are killed at once, then a new one starts
    worker.kill()
    sent_before = len(sim.recipients(uid))
    assert sent_before < 6000
    worker.start()
    # then
    view = wait_done(done.id, timeout_s=120)
    accepted = Counter(sim.recipients(uid))
    assert set(accepted.values()) == {1}, "a recipient was sent twice"
    assert sim.get("stats")["duplicates"] == 0
    assert view["counts"]["queued"] == 0 and view["counts"]["unknown"] == 0
    assert sum(view["counts"].values()) == 6000


def test_secrets_never_in_logs(worker):
    text = worker.log_text()
    assert SECRET_VOICE not in text and SECRET_JOIN not in text
