"""The chaos run, scaled down (`make chaos` runs 100,000 recipients): five jobs of every kind on PostgreSQL while
the bulk worker is SIGKILLed three times, beat once, Redis killed and restarted (AOF), the database's
connections terminated, and the simulator answers 503, over-speed, stalls and resets after accepting; then the
job counters must agree with a recount of the messages."""
from __future__ import annotations

import os

import pytest

from benchmarks.chaos import run
from tests.conftest import PG_URL, TEST_DB

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    TEST_DB != "postgresql", reason="the chaos run is PostgreSQL's: it terminates the database's connections "
                                    "(make test runs it in its PostgreSQL pass)")]


def test_every_recipient_accepted_once_and_nothing_left_open():
    # given / when: 2,500 recipients over notify, voice_sms, ims, sms and mms under 25 s of faults and blows
    result = run(2_500, fault_s=25, settle_s=300, seed=int(os.environ.get("MSGRELAY_CHAOS_SEED", "7")),
                 pg_url=PG_URL, say=lambda _line: None)
    report = "\n".join([*result.events, result.table()])
    # then: the blows landed, and the guarantees hold
    assert sum(1 for e in result.events if e.endswith("worker")) == 3, report
    assert sum(result.recipients.values()) == 2_500, report
    assert not sum(result.twice.values()), report
    assert not sum(result.never.values()), report
    assert not sum(result.open.values()), report
    assert result.mismatches == [], report  # the job counters agree with a recount of the messages
    assert result.holds, report  # and a lost worker's `unknown` recipients (if any) within what its kills reach
