"""The benchmark's step-by-step view of a verification call (benchmarks.call_steps): the otp worker's log lines as
Celery and msgrelay write them, the calls as the database keeps them, and the steps between."""
from __future__ import annotations

from datetime import datetime

import pytest

from benchmarks.call_steps import astuple, call_steps, taken_at, written_calls
from models import Chunk, Job, Message, get_engine
from tests.core.conftest import mobiles, rows, submit


def at(text: str) -> float:
    """Unix seconds of a worker log's local time."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


@pytest.mark.parametrize(("case", "lines", "taken"), [
    ("received, then what it did with its chunk", [
        "[2026-12-06 23:07:59,316: INFO/MainProcess] Task tasks.send_chunk[ee84-45b] received",
        "[2026-12-06 23:07:59,381: INFO/MainProcess] tasks.send_chunk[ee84-45b]: chunk 2684: done 1 of 1 accepted",
    ], {2684: at("2026-12-06 23:07:59,316")}),
    ("two tasks interleaved", [
        "[2026-12-06 23:07:59,316: INFO/MainProcess] Task tasks.send_chunk[a1] received",
        "[2026-12-06 23:07:59,320: INFO/MainProcess] Task tasks.send_chunk[b2] received",
        "[2026-12-06 23:07:59,390: INFO/MainProcess] tasks.send_chunk[b2]: chunk 8: done 1 of 1 accepted",
        "[2026-12-06 23:07:59,391: INFO/MainProcess] tasks.send_chunk[a1]: chunk 7: skipped chunk sent, job done",
    ], {7: at("2026-12-06 23:07:59,316"), 8: at("2026-12-06 23:07:59,320")}),
    ("a chunk line of a task never seen received (the log began later)", [
        "[2026-12-06 23:07:59,381: INFO/MainProcess] tasks.send_chunk[zz]: chunk 9: done 1 of 1 accepted",
    ], {}),
    ("other tasks and lines", [
        "[2026-12-06 23:07:59,316: INFO/MainProcess] Task tasks.poll_reports[c3] received",
        "[2026-12-06 23:07:59,317: WARNING/MainProcess] right of way: could not end a verification call (x)",
        " -------------- otp@vm v5.4.0 (opalescent)",
    ], {}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_when_the_otp_worker_took_each_chunk(case, lines, taken):
    assert taken_at(lines) == pytest.approx(taken), case


def test_a_calls_steps_add_up_to_its_time_to_the_provider():
    # given a call posted at t, written 3 ms later, taken by the worker 5 ms after that, at the provider at 17 ms
    posted = [("13900000001", 1000.0, 17.0), ("13900000002", 1000.0, 20.0), ("13900000003", 1000.0, 9.0)]
    written = {"13900000001": (1000.003, 1), "13900000003": (1000.002, 3)}  # the second never written
    taken = {1: 1000.008}  # the third's task never taken
    # then only the call traced at every step counts, and its steps add up
    (steps,) = call_steps(posted, written, taken)
    assert astuple(steps) == pytest.approx((3.0, 5.0, 9.0))
    assert sum(astuple(steps)) == pytest.approx(17.0)


def test_the_calls_as_the_database_keeps_them(accounts):
    # given a verification call and a bulk job
    call, bulk = mobiles(1)[0], mobiles(2)
    done, published = submit(accounts, "voice", "vfcode", [call], content="123456")
    submit(accounts, "voice", "notify", bulk, content="hi")
    # then the call is found by its mobile, with its job's time and its chunk; the bulk job's are not
    found = written_calls(get_engine())
    (job,) = rows(Job, id=done.id)
    assert found[call] == (pytest.approx(job.created_at.timestamp()), published[0][0])
    assert rows(Chunk, job_id=done.id)[0].id == published[0][0]
    assert not set(bulk) & set(found)
    assert rows(Message, job_id=done.id)[0].mobile == call
