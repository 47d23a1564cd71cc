"""send_chunk against the database and the simulator, no worker: a chunk is sent once, and each way a send
can go wrong ends where the guarantees say."""
from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from models import Chunk, Job, Message, session_scope, utcnow
from models.bulk import apply_reports, record_send_results
from models.statuses import ChunkStatus, MessageStatus
from msgrelay.jobs import cancel_job
from msgrelay.reports import UPDATABLE
from msgrelay.send import send_chunk
from tests.conftest import TEST_DB
from tests.core.conftest import execute, mobiles, rows, submit


def accepted_mobiles(sim, endpoint: str) -> Counter:
    """How many times the simulator accepted each mobile at `endpoint`."""
    return Counter(x["mobile"] for r in sim.accepted(endpoint) for x in r["recipients"])


@pytest.mark.parametrize(("kind", "n"), [("notify", 200), ("vfcode", 1)])  # a bulk chunk, a verification call
def test_two_deliveries_of_one_chunk_at_once_send_it_once(sim, accounts, settings, kind, n):
    # given: one chunk, delivered to two workers at the same moment, five times over
    sim.faults(latency_s=0.2)
    for _ in range(5):
        people = mobiles(n)
        done, published = submit(accounts, "voice", kind, people, content="您好" if kind == "notify" else "123456")
        (chunk_id, _), = published
        barrier, outcomes = threading.Barrier(2), []

        def deliver() -> None:
            barrier.wait()
            outcomes.append(send_chunk(chunk_id, settings=settings, accounts=accounts).action)

        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # then: one sent it, the other found it taken; every recipient reached the provider exactly once
        assert sorted(outcomes) == ["done", "skipped"]
        sent = accepted_mobiles(sim, "/voice/send" if kind == "notify" else "/voice/sendVFCode")
        assert all(sent[m] == 1 for m in people), [m for m in people if sent[m] != 1][:3]
        assert {m.status for m in rows(Message, job_id=done.id)} == {MessageStatus.SUBMITTED}


def test_a_late_send_result_never_overwrites_a_report(sim, accounts, settings):
    # given: a chunk whose first recipient's report was applied before the send's answer was written
    done, _ = submit(accounts, "voice", "notify", mobiles(3), content="您好")
    first, *rest = rows(Message, job_id=done.id)
    execute(update(Message).where(Message.id == first.id).values(status=MessageStatus.DELIVERED,
                                                                 provider_state="SUCCESS"))
    # when: the send result arrives
    with session_scope() as session:
        record_send_results(session, [(m.id, MessageStatus.SUBMITTED, f"P{m.id}") for m in (first, *rest)],
                            sent_at=utcnow())
    # then: the report stays, the provider id is recorded, the others are submitted
    after = {m.id: m for m in rows(Message, job_id=done.id)}
    assert (after[first.id].status, after[first.id].provider_msg_id) == (MessageStatus.DELIVERED, f"P{first.id}")
    assert {after[m.id].status for m in rest} == {MessageStatus.SUBMITTED}


@pytest.mark.skipif(TEST_DB != "postgresql", reason="HOT updates are PostgreSQL's")
def test_a_send_answer_and_its_report_write_no_index_entry(sim, accounts, settings):
    # given: a chunk's messages, just inserted (a page keeps room for their next two versions: fillfactor 30)
    done, _ = submit(accounts, "voice", "notify", mobiles(200), content="您好")
    messages = rows(Message, job_id=done.id)
    ids = [m.id for m in messages]
    # when: the send's answer (status, provider id) is written, and then a report, each in its own transaction,
    # with ids and words as long as Emay's (at fillfactor 40 a quarter of the reports found no room on the page)
    writes = [lambda session: record_send_results(session, [(i, MessageStatus.SUBMITTED, f"{1796628146 + i:020d}")
                                                            for i in ids], sent_at=utcnow()),
              lambda session: apply_reports(session, "voice", {
                  m.custom_id: (MessageStatus.FAILED, " FAIL_CALL ", "呼叫失败", utcnow()) for m in messages}, {},
                  now=utcnow(), updatable=UPDATABLE)]
    counted = text("SELECT pg_stat_get_xact_tuples_updated('message'::regclass), "
                   "pg_stat_get_xact_tuples_hot_updated('message'::regclass)")  # this backend's, not yet reported
    for write in writes:
        with session_scope() as session:
            before = session.execute(counted).one()
            write(session)
            after = session.execute(counted).one()
        # then: every update was HOT (with an index on provider_msg_id the answer wrote four entries a message)
        assert (after[0] - before[0], after[1] - before[1]) == (200, 200), ["answer", "report"][writes.index(write)]
    assert {m.status for m in rows(Message, job_id=done.id)} == {MessageStatus.FAILED}


def test_an_exception_before_the_request_means_not_sent(sim, accounts, settings):
    # given: a job whose stored options break the request builder (a bug, or a row written by hand)
    done, published = submit(accounts, "voice", "notify", mobiles(2), content="您好")
    execute(update(Job).where(Job.id == done.id).values(options={"isInteractive": True}))
    # when
    outcome = send_chunk(published[0][0], settings=settings, accounts=accounts)
    # then: nothing reached the provider; the chunk waits to be tried again, its messages still queued
    assert outcome.action == "retry" and sim.accepted("/voice/send") == []
    (chunk,) = rows(Chunk, job_id=done.id)
    assert (chunk.status, chunk.error_code) == (ChunkStatus.PENDING, "BUILD_ERROR")
    assert {m.status for m in rows(Message, job_id=done.id)} == {MessageStatus.QUEUED}


def test_a_worker_in_the_handshake_has_not_claimed_the_chunk(sim, accounts, settings, monkeypatch):
    # given: a provider whose TLS handshake never ends (the send's connection is made before the chunk's claim)
    from providers import http
    from tests.providers.test_http import silent_listener
    monkeypatch.setattr(http, "CONNECT_TIMEOUT_S", 1.0)
    outcome = []
    with silent_listener() as (port, accepted):
        stalled = {**accounts, "voice": accounts["voice"].model_copy(update={"base_url": f"https://127.0.0.1:{port}"})}
        done, published = submit(stalled, "voice", "notify", mobiles(2), content="您好")
        worker = threading.Thread(target=lambda: outcome.append(
            send_chunk(published[0][0], settings=settings, accounts=stalled)))
        worker.start()
        deadline = time.monotonic() + 5
        while not accepted and time.monotonic() < deadline:
            time.sleep(0.01)
        # when the worker is in the handshake: a worker lost now leaves the chunk pending (the sweeper sends it
        # again), where a claim before the connection left it `sending`, and so `unknown`
        (chunk,) = rows(Chunk, job_id=done.id)
        assert accepted and (chunk.status, chunk.attempts) == (ChunkStatus.PENDING, 0)
        worker.join()
    # then the handshake's timeout is a try that sent nothing: the chunk waits to be tried again, not in doubt
    assert outcome[0].action == "retry"
    (chunk,) = rows(Chunk, job_id=done.id)
    assert (chunk.status, chunk.error_code, chunk.ambiguous_at) == (ChunkStatus.PENDING, "CONNECT_TIMEOUT", None)
    assert {m.status for m in rows(Message, job_id=done.id)} == {MessageStatus.QUEUED}


def test_cancel_leaves_a_chunk_in_flight_to_settle(sim, accounts, settings):
    # given: a job of two chunks, the first one in flight
    done, published = submit(accounts, "voice", "notify", mobiles(600), content="您好")
    first, second = rows(Chunk, job_id=done.id)
    execute(update(Chunk).where(Chunk.id == first.id).values(status=ChunkStatus.SENDING))
    # when: the operator cancels
    with session_scope() as session:
        cancelled = cancel_job(session, done.id)
    # then: only the pending chunk's messages are cancelled; the flight's answer is recorded normally
    assert cancelled == second.hi - second.lo == 100
    in_flight = [m for m in rows(Message, job_id=done.id) if m.seq < first.hi]
    assert {m.status for m in in_flight} == {MessageStatus.QUEUED}
    with session_scope() as session:
        record_send_results(session, [(m.id, MessageStatus.SUBMITTED, None) for m in in_flight], sent_at=utcnow())
    counts = Counter(m.status for m in rows(Message, job_id=done.id))
    assert counts == {MessageStatus.SUBMITTED: 500, MessageStatus.REJECTED: 100}
    assert {c.status for c in rows(Chunk, job_id=done.id)} == {ChunkStatus.SENDING, ChunkStatus.CANCELLED}


def test_an_expired_request_id_after_an_ambiguous_try_is_never_resent(sim, accounts, settings):
    # given: an MMS chunk tried ambiguously three hours ago (ihuyi forgets a request_id after two)
    done, published = submit(accounts, "mms", "mms", mobiles(3), content="会员日",
                             options={"title": "t", "sign_name": "【互亿无线】"})
    long_ago = utcnow() - timedelta(hours=3)
    execute(update(Chunk).where(Chunk.job_id == done.id).values(request_id="r" * 32, request_id_at=long_ago,
                                                               ambiguous_at=long_ago))
    # when
    outcome = send_chunk(published[0][0], settings=settings, accounts=accounts)
    # then: nothing is sent; the chunk and its messages are unknown, left to receipts
    assert outcome.action == "done" and sim.accepted() == []
    (chunk,) = rows(Chunk, job_id=done.id)
    assert (chunk.status, chunk.error_code) == (ChunkStatus.UNKNOWN, "REQUEST_ID_EXPIRED")
    assert {m.status for m in rows(Message, job_id=done.id)} == {MessageStatus.UNKNOWN}


def test_an_expired_request_id_of_refused_tries_gets_a_new_one(sim, accounts, settings):
    # given: an MMS chunk whose tries were all refused, its request id three hours old
    done, published = submit(accounts, "mms", "mms", mobiles(3), content="会员日",
                             options={"title": "t", "sign_name": "【互亿无线】"})
    execute(update(Chunk).where(Chunk.job_id == done.id).values(request_id="r" * 32,
                                                               request_id_at=utcnow() - timedelta(hours=3)))
    # when
    assert send_chunk(published[0][0], settings=settings, accounts=accounts).action == "done"
    # then: sent once, under a new request id
    (request,) = sim.accepted()
    (chunk,) = rows(Chunk, job_id=done.id)
    assert chunk.status == ChunkStatus.SENT and chunk.request_id != "r" * 32
    assert {m.status for m in rows(Message, job_id=done.id)} == {MessageStatus.SUBMITTED}


def test_an_ambiguous_mms_try_then_failures_end_unknown_not_failed(sim, accounts, settings):
    # given: the first try is accepted and stalls past the read timeout (ambiguous), every later one is a 503
    done, published = submit(accounts, "mms", "mms", mobiles(2), content="会员日",
                             options={"title": "t", "sign_name": "【互亿无线】"})
    chunk_id = published[0][0]
    sim.faults(stall_after_accept_rate=1.0, stall_s=settings.http_read_timeout_s + 1)
    assert send_chunk(chunk_id, settings=settings, accounts=accounts).action == "retry"  # same request id again
    sim.faults(error_5xx_rate=1.0)
    # when: the task retries until the tries run out
    for _ in range(settings.retry_max + 1):
        if send_chunk(chunk_id, settings=settings, accounts=accounts).action != "retry":
            break
    # then: unknown (the provider may have the first try), never failed
    (chunk,) = rows(Chunk, job_id=done.id)
    assert chunk.status == ChunkStatus.UNKNOWN and chunk.ambiguous_at is not None
    assert {m.status for m in rows(Message, job_id=done.id)} == {MessageStatus.UNKNOWN}


def test_a_rate_limit_wait_moves_the_chunks_due_time(sim, accounts, settings):
    # given: an account allowed one request every ten seconds, whose one token is already taken
    name = f"limited-{time.time_ns()}"  # a bucket of its own
    limited = {**accounts, name: accounts["voice"].model_copy(update={"name": name, "rate_limit": 0.1})}
    first, published = submit(limited, name, "notify", mobiles(1), content="您好")
    assert send_chunk(published[0][0], settings=settings, accounts=limited).action == "done"
    second, published = submit(limited, name, "notify", mobiles(1), content="您好")
    before = utcnow()
    # when
    outcome = send_chunk(published[0][0], settings=settings, accounts=limited)
    # then: the task waits (not a try), and the chunk's due time moved with it, so the sweeper leaves it alone
    (chunk,) = rows(Chunk, job_id=second.id)
    assert outcome.action == "retry" and 0 < outcome.countdown <= settings.visibility_timeout_s / 4
    assert chunk.status == ChunkStatus.PENDING and chunk.attempts == 0
    assert chunk.next_attempt_at >= before + timedelta(seconds=outcome.countdown * 0.9)
