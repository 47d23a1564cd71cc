"""Verification calls have the right of way (msgrelay.right_of_way), against the real Redis, the database and the
simulator: the API counts a call from before its write and hands it to its chunk; throughput steps (a bulk send,
a report poll, a big submit) wait for the calls in flight, a bounded time; Redis failing holds nothing off. The
Celery side (the otp task ending its call, a bulk task waiting) is in tests/e2e/test_right_of_way.py."""
from __future__ import annotations

import logging
import os
import threading
import time

import pytest
import redis
from pydantic import ValidationError

from models import Chunk, Message, ReportPage
from msgrelay import right_of_way as row
from msgrelay.reports import poll_reports
from msgrelay.send import send_chunk
from msgrelay.settings import Settings, get_settings, reload_settings
from msgrelay import submit as submit_module
from msgrelay.submit import submit_job
from msgrelay.upload import submit_stream
from providers.errors import InvalidInput
from msgrelay.cli.processes import Supervisor, start_embedded_redis
from tests.core.conftest import mobiles, rows, submit

HELD = "test:held"
#: how long a test holds Redis's writes: within the right of way's 250 ms timeout, so a held command still succeeds
HOLD_S = 0.2


def hold_writes(client: redis.Redis, seconds: float) -> threading.Timer:
    """Hold every write to `client`'s Redis for `seconds` (a busy Redis), reads going on: `CLIENT PAUSE … WRITE`,
    lifted by `CLIENT UNPAUSE` on time (Redis would lift a pause's own timeout only at its next cron tick)."""
    client.client_pause(10_000, all=False)
    timer = threading.Timer(seconds, client.client_unpause)
    timer.start()
    return timer


@pytest.fixture
def client() -> redis.Redis:
    """The real Redis, with no call in flight before or after the test."""
    c = row.get_client()
    c.delete(row.KEY)
    yield c
    c.delete(row.KEY)


@pytest.fixture
def paused_redis(monkeypatch, tmp_path) -> redis.Redis:
    """A Redis of this test's own for the right of way (so that pausing it holds no other test up): its client."""
    with Supervisor(tmp_path / "logs") as sup:
        try:
            monkeypatch.setenv("MSGRELAY_REDIS_URL", start_embedded_redis(sup, tmp_path))
            reload_settings()
            yield row.get_client()
        finally:
            monkeypatch.undo()
            reload_settings()


def in_flight(client: redis.Redis) -> set[str]:
    """The members of the calls counted in flight (past deadlines included until a check drops them)."""
    return {m.decode() for m in client.zrange(row.KEY, 0, -1)}


def ended_after(member: str, seconds: float) -> threading.Timer:
    """End `member`'s call `seconds` from now (as the otp worker would, as its request leaves)."""
    timer = threading.Timer(seconds, row.call_ended, [member])
    timer.start()
    return timer


@pytest.mark.parametrize(("case", "ttl_ms", "ends_after_s", "max_wait_s", "least", "most"), [
    ("nothing in flight", None, None, 1.0, 0.0, 0.1),
    ("a call that ends after 0.3 s", 60_000, 0.3, 2.0, 0.3, 1.0),
    ("a call that never ends: the bound", 60_000, None, 0.4, 0.4, 1.0),
    ("a call past its deadline after 0.3 s", 300, None, 2.0, 0.29, 1.0),  # Redis counts whole ms
    ("a call in flight, waiting off (0)", 60_000, None, 0.0, 0.0, 0.01),
], ids=lambda v: v if isinstance(v, str) else "")
def test_give_way_waits_for_the_calls_in_flight_a_bounded_time(client, case, ttl_ms, ends_after_s, max_wait_s,
                                                               least, most):
    # given the case's call
    if ttl_ms:
        row.call_started(HELD, ttl_ms=ttl_ms)
    timer = ended_after(HELD, ends_after_s) if ends_after_s else None
    # when a throughput step gives way
    started = time.monotonic()
    waited = row.give_way(max_wait_s)
    took = time.monotonic() - started
    if timer:
        timer.join()
    # then it waited until the call ended, its deadline passed, or the bound
    assert least <= waited <= most, (case, waited)
    assert abs(took - waited) < 0.05


def call_seen_while_writing(client, accounts, monkeypatch, *, hold_s: float = 0) -> tuple[set, set, list]:
    """Submit a verification call with a spy on its write: what was in flight as the write began, what the write
    saw counted within a second (its member appearing while it writes), and what was in flight at the publish with
    the member the publish was given. `hold_s`: Redis holds every write that long from just before."""
    at_start: list[set[str]] = []
    seen: list[set[str]] = []
    original = submit_module._write

    def spied(*args, **kwargs):
        at_start.append(in_flight(client))  # a read: a paused Redis still answers it
        deadline = time.monotonic() + 1.0
        while not in_flight(client) and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.append(in_flight(client))
        return original(*args, **kwargs)
    monkeypatch.setattr(submit_module, "_write", spied)
    at_publish: list[tuple[set[str], str | None]] = []
    held = hold_writes(client, hold_s) if hold_s else None
    submit_job(accounts=accounts, account="voice", kind="vfcode", recipients=mobiles(1), content="123456",
               enqueue=lambda chunks, call=None: at_publish.append((in_flight(client), call)))
    if held:
        held.join()
    return at_start[0], seen[0], at_publish


def test_a_call_counts_beside_its_write_and_is_handed_over_with_its_message(client, accounts, monkeypatch):
    # when a verification call (the otp queue) is submitted
    _, seen, at_publish = call_seen_while_writing(client, accounts, monkeypatch)
    # then it counted while it was being written, and its member went with the publish (the otp task ends it)
    assert len(seen) == 1
    (member,) = seen
    assert member.startswith("call:")
    assert at_publish == [({member}, member)]
    assert in_flight(client) == {member}  # until the otp worker ends it


def test_a_call_does_not_wait_for_redis_before_its_write_but_is_counted_before_its_publish(paused_redis, accounts,
                                                                                         monkeypatch):
    # when a verification call is submitted while Redis holds its writes for 0.2 s (a busy Redis)
    at_start, _, at_publish = call_seen_while_writing(paused_redis, accounts, monkeypatch, hold_s=HOLD_S)
    # then its write began before Redis had counted it (counting is beside the write, not before it) ...
    assert at_start == set()
    # ... and it was counted by the time its chunk was published, so it never ends before it began
    ((counted, member),) = at_publish
    assert counted == {member} and member.startswith("call:")


def test_a_forked_process_counts_its_calls_on_a_thread_of_its_own(client):
    # given this process counted a call (its counting thread runs)
    row.Call().close()
    # when a forked child counts one (the parent's thread is not in the child)
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's exit code is the assertion)
        try:
            call = row.Call()
            member = call.hand_over()
            os._exit(0 if member in in_flight(row.get_client()) else 1)
        except BaseException:
            os._exit(2)
    # then it counts, rather than waiting forever for a thread that is not there
    deadline = time.monotonic() + 10
    while (done := os.waitpid(child, os.WNOHANG)) == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    if done == (0, 0):
        os.kill(child, 9)
        os.waitpid(child, 0)
        pytest.fail("the forked child never counted its call")
    assert os.waitstatus_to_exitcode(done[1]) == 0


@pytest.mark.parametrize(("case", "kind", "n"), [
    ("a bulk job of one", "notify", 1),
    ("a bulk job of many", "notify", 30),
    ("a repeat of a verification call's idempotency key", "vfcode", 1),
])
def test_what_is_no_verification_call_leaves_nothing_in_flight(client, accounts, case, kind, n):
    key = f"row-{time.time_ns()}"
    if "repeat" in case:  # the first one is a call; the test is about its repeat
        submit(accounts, "voice", kind, mobiles(n), content="123456", idempotency_key=key)
        client.delete(row.KEY)
    done, published = submit(accounts, "voice", kind, mobiles(n), content="123456" if kind == "vfcode" else "hi",
                             idempotency_key=key)
    assert in_flight(client) == set(), case
    assert done.created == ("repeat" not in case)


def test_a_refused_verification_call_stops_counting(client, accounts):
    # a custom_id another message has: refused after the call began counting
    first = mobiles(1)[0]
    submit(accounts, "voice", "vfcode", [{"mobile": first, "custom_id": f"row-taken-{time.time_ns()}"}],
           content="123456")
    taken = rows(Message, mobile=first)[0].custom_id
    client.delete(row.KEY)
    with pytest.raises(InvalidInput):
        submit(accounts, "voice", "vfcode", [{"mobile": mobiles(1)[0], "custom_id": taken}], content="123456")
    assert in_flight(client) == set()


@pytest.mark.parametrize(("case", "verification", "held"), [
    ("a bulk send gives way", False, True),
    ("a verification call's own send does not", True, False),
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_bulk_send_reaches_the_provider_only_after_the_call_in_flight(client, sim, accounts, settings, case,
                                                                        verification, held):
    # given a chunk ready to send and a call in flight that reaches the provider 0.4 s from now
    _, published = submit(accounts, "voice", "notify", mobiles(5), content="hi")
    client.delete(row.KEY)
    row.call_started(HELD, ttl_ms=60_000)
    started = time.time()
    timer = ended_after(HELD, 0.4)
    # when the chunk is sent
    chunk_id = published[0][0]
    send_chunk(chunk_id, settings=settings, accounts=accounts,
               way=row.way_of_send(None, verification=verification, max_wait_s=2.0))
    timer.join()
    # then a bulk send's request reached the provider after the call; the call's own did not wait
    (record,) = sim.accepted()
    assert (record["arrived_at"] - started >= 0.4) is held, (case, record["arrived_at"] - started)
    assert {m.status for m in rows(Message, job_id=rows(Chunk, id=chunk_id)[0].job_id)} == {"submitted"}


def test_a_verification_call_stops_holding_off_as_its_request_leaves(client, sim, accounts, settings):
    # given a verification call handed to its chunk, and a provider that takes a second to answer
    done, published = submit(accounts, "voice", "vfcode", mobiles(1), content="123456")
    (member,) = in_flight(client)
    sim.faults(latency_s=1.0)
    # when its chunk is sent (in a thread: the provider answers in a second)
    sending = threading.Thread(target=send_chunk, args=(published[0][0],), kwargs=dict(
        settings=settings, accounts=accounts,
        way=row.way_of_send(member, verification=True, max_wait_s=2.0)))
    sending.start()
    try:
        # then the call stops counting while the provider is still answering: its round trip holds nothing off
        deadline = time.monotonic() + 0.8
        while member in in_flight(client) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert member not in in_flight(client) and sending.is_alive()
    finally:
        sending.join()
    assert rows(Message, job_id=done.id)[0].status == "submitted"


def test_a_verification_calls_request_does_not_wait_for_redis_to_end_its_call(paused_redis, sim, accounts,
                                                                                settings):
    client = paused_redis
    # given a verification call handed to its chunk, and a Redis that holds every write for 0.2 s (a busy Redis)
    done, published = submit(accounts, "voice", "vfcode", mobiles(1), content="123456")
    (member,) = in_flight(client)
    started = time.time()
    held = hold_writes(client, HOLD_S)
    # when its chunk is sent
    send_chunk(published[0][0], settings=settings, accounts=accounts,
               way=row.way_of_send(member, verification=True, max_wait_s=2.0))
    # then its request reached the provider while Redis still held the call's end ...
    (record,) = [r for r in sim.accepted() if r["recipients"][0]["mobile"] == rows(Message, job_id=done.id)[0].mobile]
    held.join()
    assert record["arrived_at"] - started < HOLD_S
    # ... which Redis then took: the call stops counting
    deadline = time.monotonic() + 2
    while member in in_flight(client) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert member not in in_flight(client)


def test_a_report_poll_and_a_big_submit_give_way(client, sim, accounts):
    # given reports waiting at the provider
    _, published = submit(accounts, "voice", "notify", mobiles(5), content="hi")
    settings = Settings(right_of_way_ms=2000)
    send_chunk(published[0][0], settings=settings, accounts=accounts)
    time.sleep(0.5)  # the simulator's report delay
    before = sum(page.size for page in rows(ReportPage))
    for what, step, waits_s in (
        ("poll", lambda: poll_reports(accounts["voice"], settings), 0.4),  # until the call ends
        ("upload", lambda: submit_stream(accounts=accounts, account="voice", kind="notify", content="hi",
                                         recipients=iter(mobiles(3)), enqueue=lambda chunks, call=None: None),
         get_settings().right_of_way_s),  # the process's settings (200 ms): the bound
    ):
        # when a call is in flight for 0.4 s while the step runs
        row.call_started(HELD, ttl_ms=60_000)
        timer = ended_after(HELD, 0.4)
        started = time.monotonic()
        step()
        took = time.monotonic() - started
        timer.join()
        # then the step waited for it, or for its bound (and then did its work)
        assert waits_s <= took < waits_s + 0.3, (what, took)
    assert sum(page.size for page in rows(ReportPage)) >= before + 5


def test_redis_down_holds_nothing_off_and_fails_no_call(caplog):
    dead = row._client("redis://127.0.0.1:1/0")  # the right of way's own client, of a Redis that is not there
    with caplog.at_level(logging.WARNING, logger="msgrelay.right_of_way"):
        row.call_started("test:dead", client=dead)
        row.call_ended("test:dead", client=dead)
    started = time.monotonic()
    assert row.give_way(2.0, client=dead) < 1.0
    assert time.monotonic() - started < 1.0
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "right of way: could not count a verification call in flight",
        "right of way: could not end a verification call"]


def test_with_the_right_of_way_off_a_call_is_not_counted(client, accounts, monkeypatch):
    monkeypatch.setenv("MSGRELAY_RIGHT_OF_WAY_MS", "0")
    reload_settings()
    try:
        submit(accounts, "voice", "vfcode", mobiles(1), content="123456")
        assert in_flight(client) == set()
    finally:
        monkeypatch.delenv("MSGRELAY_RIGHT_OF_WAY_MS")
        reload_settings()


@pytest.mark.parametrize("value", ["-1", "10001", "soon"])
def test_a_bad_right_of_way_is_refused_naming_it(monkeypatch, value):
    monkeypatch.setenv("MSGRELAY_RIGHT_OF_WAY_MS", value)
    with pytest.raises(ValidationError, match="right_of_way_ms"):
        Settings()
