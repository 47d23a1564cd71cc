"""The chaos run's verdict: which results keep the guarantees (a lost worker's `unknown` recipients only where
nothing may resend them, and no more than its kills can reach)."""
from __future__ import annotations

from collections import Counter

import pytest

from benchmarks.chaos import BATCH, BULK_THREADS, Result

REACH = BULK_THREADS * BATCH  # one kill: a chunk per bulk thread


def result(kills: int = 3, **counts: dict[str, int]) -> Result:
    """A result of 100 sms recipients accepted once, with the counts given per kind on top."""
    r = Result(worker_kills=kills)
    r.recipients["sms"] = r.once["sms"] = 100
    for name, by_kind in counts.items():
        getattr(r, name).update(Counter(by_kind))
    return r


@pytest.mark.parametrize("r, holds", [
    (result(), True),
    (result(twice={"sms": 1}), False),
    (result(never={"sms": 1}), False),
    (result(open={"notify": 1}), False),
    (result(lost={"notify": 100}), True),  # a worker killed between a claim and its request: truthful `unknown`
    (result(lost={"sms": 100, "ims": 100}), True),
    (result(lost={"mms": 1}), False),  # ihuyi's chunk is sent again with its request id: never left behind
    (result(kills=0, lost={"sms": 1}), False),  # no kill, no lost worker
    (result(kills=1, lost={"sms": REACH}), True),
    (result(kills=1, lost={"sms": REACH + 1}), False),  # more than one kill's threads could hold
], ids=["clean", "twice", "never", "open", "lost-notify", "lost-two-kinds", "lost-mms", "lost-no-kill",
        "lost-at-reach", "lost-past-reach"])
def test_the_verdict(r, holds):
    assert r.holds is holds
