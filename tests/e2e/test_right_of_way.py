"""Verification calls have the right of way, with the real worker: the otp task ends its call as its request leaves,
and a bulk task waits for a call in flight before its steps (counted in `/metrics`). The plain functions' side is
tests/core/test_right_of_way.py."""
from __future__ import annotations

import time

import pytest

from msgrelay import right_of_way as row
from tests.e2e.conftest import job_uid, message_rows, mobiles, wait_until
from tests.e2e.test_metrics import scrape, value

pytestmark = pytest.mark.e2e


@pytest.fixture
def client():
    """The real Redis, with no call in flight before or after the test (a call left over would slow the others)."""
    c = row.get_client()
    c.delete(row.KEY)
    yield c
    c.delete(row.KEY)


def test_the_otp_task_ends_its_call_once_sent(api, sim, client, monkeypatch):
    # given calls that would count for a minute unless ended (so only the worker's ending removes one)
    monkeypatch.setattr(row, "CALL_TTL_MS", 60_000)
    started: list[str] = []
    original = row.call_started
    monkeypatch.setattr(row, "call_started", lambda member, **kw: (started.append(member), original(member, **kw)))
    # when a verification call is accepted and sent
    job = api.post("/v1/jobs", json={"account": "voice", "kind": "vfcode", "content": "123456",
                                      "recipients": mobiles("186", 1)}).json()["id"]
    (member,) = started
    wait_until(lambda: message_rows(job)[0]["status"] == "submitted", timeout_s=30, what="the call sent")
    # then its member is gone, ended by the otp task (its deadline is a minute away)
    wait_until(lambda: client.zscore(row.KEY, member) is None, timeout_s=5, what="the call ended by the worker")
    assert client.zcard(row.KEY) == 0


def test_a_bulk_task_waits_for_a_call_in_flight(api, sim, live_api, client):
    # given a call in flight that no worker will end (it stands for one whose otp task has not run yet)
    before = scrape(live_api)
    row.call_started("test:held", ttl_ms=60_000)
    try:
        started = time.time()
        job = api.post("/v1/jobs", json={"account": "voice", "kind": "notify", "content": "您好",
                                          "recipients": mobiles("187", 3)}).json()["id"]
        # when its chunk is sent
        wait_until(lambda: {m["status"] for m in message_rows(job)} == {"submitted"}, timeout_s=30, what="the send")
    finally:
        client.delete(row.KEY)
    # then the request reached the provider only after the bound of a wait (200 ms) before the claim, and the
    # task counted its waits (before the claim and before recording the answer)
    (request,) = sim.requests_for(job_uid(job))
    assert request["arrived_at"] - started >= 0.2
    waited = value(scrape(live_api), "msgrelay_right_of_way_wait_seconds_total", work="send") - value(
        before, "msgrelay_right_of_way_wait_seconds_total", work="send")
    assert 0.4 <= waited < 2.0, waited
