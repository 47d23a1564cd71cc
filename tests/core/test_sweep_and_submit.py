"""The sweeper's decisions and submit's guarantees, against the database (and Redis for the token bucket)."""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from models import Chunk, Job, Message, utcnow
from models.statuses import ChunkStatus, JobStatus, MessageStatus
from msgrelay.cli.processes import free_port
from msgrelay.limits import take_token
from msgrelay.sweep import sweep
from providers.errors import InvalidInput
from tests.core.conftest import execute, mobiles, rows, submit


def ago(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)


def test_the_sweeper_releases_requeues_settles_and_expires(accounts, settings):
    # given: a scheduled job now due, a stale pending chunk, a fresh one, a lost voice send, a lost MMS send
    # with its request id, and a message submitted long ago
    scheduled, _ = submit(accounts, "voice", "notify", mobiles(1), content="您好",
                          send_at=datetime.now(timezone.utc) + timedelta(hours=1))
    execute(update(Job).where(Job.id == scheduled.id).values(send_at=ago(1)))
    stale, _ = submit(accounts, "voice", "notify", mobiles(1), content="您好")
    execute(update(Chunk).where(Chunk.job_id == stale.id).values(next_attempt_at=ago(settings.stale_pending_s + 5)))
    fresh, _ = submit(accounts, "voice", "notify", mobiles(1), content="您好")
    lost, _ = submit(accounts, "voice", "notify", mobiles(2), content="您好")
    execute(update(Chunk).where(Chunk.job_id == lost.id).values(status=ChunkStatus.SENDING,
                                                               updated_at=ago(settings.stale_sending_s + 5)))
    lost_mms, _ = submit(accounts, "mms", "mms", mobiles(2), content="会员日",
                         options={"title": "t", "sign_name": "【互亿无线】"})
    execute(update(Chunk).where(Chunk.job_id == lost_mms.id).values(
        status=ChunkStatus.SENDING, request_id="r" * 32, request_id_at=ago(60),
        updated_at=ago(settings.stale_sending_s + 5)))
    old, _ = submit(accounts, "voice", "notify", mobiles(1), content="您好")
    execute(update(Chunk).where(Chunk.job_id == old.id).values(status=ChunkStatus.SENT,
                                                              updated_at=ago(settings.report_expiry_s + 5)))
    execute(update(Message).where(Message.job_id == old.id).values(
        status=MessageStatus.SUBMITTED, submitted_at=ago(settings.report_expiry_s + 5)))
    # when
    result = sweep(settings)
    enqueued = {cid for cid, _ in result.enqueue}
    # then
    assert rows(Job, id=scheduled.id)[0].status == JobStatus.RUNNING
    assert {c.id for c in rows(Chunk, job_id=scheduled.id)} <= enqueued
    assert {c.id for c in rows(Chunk, job_id=stale.id)} <= enqueued
    assert not {c.id for c in rows(Chunk, job_id=fresh.id)} & enqueued
    (stale_chunk,) = rows(Chunk, job_id=stale.id)
    assert stale_chunk.next_attempt_at > ago(5)  # moved: the next sweep does not publish it again
    (lost_chunk,) = rows(Chunk, job_id=lost.id)
    assert (lost_chunk.status, lost_chunk.error_code) == (ChunkStatus.UNKNOWN, "WORKER_LOST")  # never resent
    assert {(m.status, m.provider_state) for m in rows(Message, job_id=lost.id)} == {(MessageStatus.UNKNOWN,
                                                                                     "WORKER_LOST")}
    (mms_chunk,) = rows(Chunk, job_id=lost_mms.id)
    assert mms_chunk.status == ChunkStatus.PENDING and mms_chunk.id in enqueued  # same request id: safe
    assert mms_chunk.ambiguous_at is not None and mms_chunk.error_code == "WORKER_LOST"
    assert rows(Message, job_id=old.id)[0].status == MessageStatus.EXPIRED
    assert rows(Job, id=old.id)[0].status == JobStatus.DONE


def test_expiry_works_through_chunks_sent_before_the_deadline_and_closes_them(accounts, settings):
    # given a chunk sent long ago with one message reported and two silent, and a chunk sent just now
    old, _ = submit(accounts, "voice", "notify", mobiles(3), content="您好")
    recent, _ = submit(accounts, "voice", "notify", mobiles(1), content="您好")
    long_ago = ago(settings.report_expiry_s + 5)
    for job, at in ((old, long_ago), (recent, ago(1))):
        execute(update(Chunk).where(Chunk.job_id == job.id).values(status=ChunkStatus.SENT, updated_at=at))
        execute(update(Message).where(Message.job_id == job.id).values(status=MessageStatus.SUBMITTED,
                                                                       submitted_at=at))
    execute(update(Message).where(Message.job_id == old.id, Message.seq == 0).values(status=MessageStatus.DELIVERED))
    # when
    first, second = sweep(settings), sweep(settings)
    # then the silent two expired, the reported one kept its status, the old chunk is closed and not visited again
    assert [m.status for m in sorted(rows(Message, job_id=old.id), key=lambda m: m.seq)] == [
        MessageStatus.DELIVERED, MessageStatus.EXPIRED, MessageStatus.EXPIRED]
    assert rows(Chunk, job_id=old.id)[0].closed_at is not None
    assert first.expired >= 2 and second.expired == 0
    assert rows(Message, job_id=recent.id)[0].status == MessageStatus.SUBMITTED
    assert rows(Chunk, job_id=recent.id)[0].closed_at is None


def test_a_second_sweep_publishes_nothing_new(accounts, settings):
    stale, _ = submit(accounts, "voice", "notify", mobiles(1), content="您好")
    execute(update(Chunk).where(Chunk.job_id == stale.id).values(next_attempt_at=ago(settings.stale_pending_s + 5)))
    (chunk,) = rows(Chunk, job_id=stale.id)
    assert chunk.id in {cid for cid, _ in sweep(settings).enqueue}
    assert chunk.id not in {cid for cid, _ in sweep(settings).enqueue}


def test_a_broker_down_at_submit_still_accepts_the_job_once(accounts):
    # given: publishing fails after the job is committed
    def broker_down(chunks, *, call=None) -> None:
        raise ConnectionError("Redis is down")

    from msgrelay.submit import submit_job
    key = f"key-{time.time_ns()}"
    # when: the producer submits, and retries with the same idempotency key
    first = submit_job(accounts=accounts, account="voice", kind="notify", recipients=mobiles(3), content="您好",
                       enqueue=broker_down, idempotency_key=key)
    again = submit_job(accounts=accounts, account="voice", kind="notify", recipients=mobiles(3), content="您好",
                       enqueue=broker_down, idempotency_key=key)
    # then: one job, accepted; its chunk waits pending for the sweeper to publish
    assert first.created and not again.created and again.id == first.id
    assert [c.status for c in rows(Chunk, job_id=first.id)] == [ChunkStatus.PENDING]


def through_celery_to_a_dead_broker(chunks, *, call=None) -> None:
    """Celery's own publish to a Redis that is not there (a port nothing listens on)."""
    from celery import Celery
    dead = Celery("dead", broker=f"redis://127.0.0.1:{free_port()}/0", broker_connection_timeout=1)
    for chunk_id, queue in chunks:
        dead.send_task("tasks.send_chunk", args=[chunk_id], queue=queue)


def refused(chunks, *, call=None) -> None:
    raise ConnectionRefusedError(111, "Connection refused")


def a_bug(chunks, *, call=None) -> None:
    raise TypeError("enqueue() got an unexpected keyword argument")


@pytest.mark.parametrize(("enqueue", "level", "said"), [
    (through_celery_to_a_dead_broker, logging.WARNING, "publishing its chunks failed; the sweeper will publish them"),
    (refused, logging.WARNING, "publishing its chunks failed; the sweeper will publish them"),
    (a_bug, logging.ERROR, "publishing its chunks failed unexpectedly; the sweeper will publish them"),
], ids=["celery, broker down", "connection refused", "a bug in the enqueue"])
def test_a_failed_publish_keeps_the_job_and_says_why(accounts, caplog, enqueue, level, said):
    from msgrelay.submit import submit_job
    with caplog.at_level(logging.WARNING, logger="msgrelay.submit"):
        done = submit_job(accounts=accounts, account="voice", kind="notify", recipients=mobiles(2), content="您好",
                          enqueue=enqueue)
    assert done.created
    assert [c.status for c in rows(Chunk, job_id=done.id)] == [ChunkStatus.PENDING]
    (record,) = [r for r in caplog.records if r.name == "msgrelay.submit"]
    assert (record.levelno, record.getMessage()) == (level, f"job {done.id}: {said}")


def test_one_international_phone_written_three_ways_is_one_recipient(accounts):
    done, published = submit(accounts, "ims", "ims", ["+61422118000", "0061422118000", "+61 422 118 000",
                                                      "+61422118001"], content="hello")
    assert (done.recipients, done.duplicates_removed) == (2, 2)
    assert sorted(m.mobile for m in rows(Message, job_id=done.id)) == ["0061422118000", "0061422118001"]


BAD_INPUT = [
    ("content", {"content": "a \ud800 b"}),
    ("content", {"content": "nul \x00 here"}),
    ("recipients[0].content", {"recipients": [{"mobile": "13800000000", "content": "\udfff"}]}),
    ("recipients[0].custom_id", {"recipients": [{"mobile": "13800000000", "custom_id": "x\ud800"}]}),
    ("idempotency_key", {"idempotency_key": "k\ud800"}),
    ("options.isInteractive", {"options": {"isInteractive": "\ud800"}}),
    ("send_at", {"send_at": datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-8)))}),
]


@pytest.mark.parametrize(("field", "change"), BAD_INPUT, ids=[f for f, _ in BAD_INPUT])
def test_text_no_database_can_store_is_refused_naming_the_field(accounts, field, change):
    job = {"recipients": mobiles(1), "content": "您好", **change}
    before = len(rows(Job))
    with pytest.raises(InvalidInput) as refused:
        submit(accounts, "voice", "notify", job.pop("recipients"), **job)
    assert refused.value.field == field
    assert len(rows(Job)) == before  # nothing written


def test_the_token_bucket_holds_its_rate_across_threads():
    # given: an account limited to 20 requests a second, asked by 8 threads as fast as they can for 1.5 s
    account, granted, stop = f"bucket-{time.time_ns()}", [], time.monotonic() + 1.5

    def ask() -> None:
        while time.monotonic() < stop:
            if take_token(account, 20.0) == 0:
                granted.append(time.monotonic())
            else:
                time.sleep(0.005)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then: at most one second's burst plus the rate over the time between the first and the last grant
    granted.sort()
    assert 20 <= len(granted) <= 20 + 20 * (granted[-1] - granted[0]) + 1


#: (kind, recipients, suppressed among them, chunks): one batch or less is one statement on PostgreSQL
SMALL_AND_NOT = [("vfcode", 1, 0, 1), ("notify", 3, 1, 1), ("notify", 500, 0, 1), ("notify", 501, 1, 2)]


@pytest.mark.parametrize(("kind", "n", "suppressed", "chunks"), SMALL_AND_NOT,
                         ids=[f"{k}-{n}" for k, n, _, _ in SMALL_AND_NOT])
def test_a_job_of_one_batch_is_written_in_one_statement_on_postgresql(accounts, kind, n, suppressed, chunks):
    from sqlalchemy import event
    from sqlalchemy.engine.interfaces import CacheStats

    from models import get_engine, session_scope
    from models.counts import job_counts
    from msgrelay.policy import suppressions

    people = mobiles(n)
    for mobile in people[1:1 + suppressed]:
        suppressions.add(accounts, mobile, scope="voice", reason="test")
    seen: list[str] = []
    cached: list[bool] = []  # per WITH statement: whether its compiled form came from the engine's cache
    autocommit: list[bool] = []  # … and whether it ran outside a transaction (no BEGIN and COMMIT round trips)
    engine = get_engine(None)  # the engine session_scope() uses

    def listen(conn, _cursor, statement, _params, context, _many) -> None:
        seen.append(statement)
        if statement.lstrip().startswith("WITH made AS"):
            cached.append(context.cache_hit is CacheStats.CACHE_HIT)
            autocommit.append(conn.connection.dbapi_connection.autocommit)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        done, published = submit(accounts, "voice", kind, people, content="123456" if kind == "vfcode" else "通知")
        # the same shape once more, other recipients: the statement is compiled once
        submit(accounts, "voice", kind, mobiles(n), content="654321" if kind == "vfcode" else "通知")
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    # then the job, its chunks and its messages are as the batched path writes them, on either database
    job = rows(Job, id=done.id)[0]
    assert (job.total, job.chunks, job.suppressed, job.status) == (n, chunks, suppressed, JobStatus.RUNNING)
    assert [(c.lo, c.hi, c.status) for c in rows(Chunk, job_id=job.id)] == [
        (lo, min(lo + 500, n), ChunkStatus.PENDING) for lo in range(0, n, 500)]
    assert len(published) == chunks
    messages = rows(Message, job_id=job.id)
    assert [(m.seq, m.mobile, m.custom_id) for m in messages] == [
        (i, p, f"{job.uid}-{i:07d}") for i, p in enumerate(people)]
    assert sorted(m.custom_id for m in messages) == [m.custom_id for m in messages]  # the index only appends
    assert [m.provider_state for m in messages if m.status == MessageStatus.REJECTED] == ["SUPPRESSED"] * suppressed
    with session_scope() as session:  # the counters' triggers ran for the one statement too
        counts = job_counts(session, job.id)
    assert (counts[MessageStatus.QUEUED], counts[MessageStatus.REJECTED]) == (n - suppressed, suppressed)
    writes = [s for s in seen if s.lstrip().upper().startswith(("INSERT", "WITH"))]
    if engine.dialect.name == "postgresql" and chunks == 1:
        assert len(writes) == 2 and all(w.lstrip().startswith("WITH made AS") for w in writes)
        assert cached[1], "the second job of one batch compiled its statement again"
        assert autocommit == [True, True], "the one statement of a job of one batch ran in a transaction"
    else:
        assert not any(s.lstrip().startswith("WITH made AS") for s in writes)


def test_a_job_uid_starts_with_its_second_so_a_later_jobs_custom_ids_sort_after():
    from msgrelay.submit import new_job_uid, our_custom_id
    before = int(time.time())
    uids = [new_job_uid() for _ in range(1000)]
    assert len(set(uids)) == 1000 and {len(u) for u in uids} == {20}
    assert all(before <= int(u[:8], 16) <= int(time.time()) for u in uids)
    assert our_custom_id("0" * 20, 42) == f"{'0' * 20}-0000042" and len(our_custom_id(uids[0], 4_999_999)) == 28
