"""What a verification call waits on, kept small without losing a guarantee: the claim reads its batch in the
claiming statement, and a pooled connection is pinged only when it may be gone."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import text, update

from models import Chunk, Message, get_engine, session_scope, utcnow
from models.bulk import claim_with_batch
from models.statuses import ChunkStatus, MessageStatus
from tests.conftest import TEST_DB
from tests.core.conftest import execute, mobiles, rows, submit

#: (case, chunk status before, messages made not queued, claimed?, seqs read)
CLAIMS = [
    ("pending, all queued", ChunkStatus.PENDING, [], True, [0, 1, 2, 3]),
    ("pending, one already rejected", ChunkStatus.PENDING, [1], True, [0, 2, 3]),
    ("pending, nothing left queued", ChunkStatus.PENDING, [0, 1, 2, 3], True, []),
    ("taken by another worker", ChunkStatus.SENDING, [], False, []),
]


@pytest.mark.parametrize(("status", "closed", "claimed", "seqs"), [c[1:] for c in CLAIMS], ids=[c[0] for c in CLAIMS])
def test_a_claim_returns_its_batch_in_seq_order_or_nothing(accounts, status, closed, claimed, seqs):
    # given: a job of four recipients in one chunk, in the state of the case
    people = mobiles(4)
    done, [(chunk_id, _)] = submit(accounts, "voice", "notify", people, content="您好")
    execute(update(Chunk).where(Chunk.id == chunk_id).values(status=status))
    if closed:
        execute(update(Message).where(Message.job_id == done.id, Message.seq.in_(closed))
                .values(status=MessageStatus.REJECTED))
    # when: the claim runs (on PostgreSQL one statement)
    with session_scope() as session:
        won, batch = claim_with_batch(session, chunk_id=chunk_id, request_id_before=None, request_id="r1",
                                      request_id_at=utcnow(), now=utcnow(), job_id=done.id, lo=0, hi=4)
    # then: the claim's own row when it won, and the queued messages in seq order
    assert (won is not None) == claimed
    if claimed:
        assert tuple(won) == (1, None)
    by_id = {m.id: m.seq for m in rows(Message, job_id=done.id)}
    assert [by_id[mid] for mid, *_ in batch] == seqs
    assert [mobile for _, mobile, _, _ in batch] == [people[s] for s in seqs]
    chunk = rows(Chunk, id=chunk_id)[0]
    assert chunk.status == ChunkStatus.SENDING
    assert chunk.request_id == ("r1" if claimed else None)


def test_a_claim_whose_request_id_changed_since_it_was_read_is_lost(accounts):
    # given: a pending chunk whose request id another worker has set since this one read it as empty
    done, [(chunk_id, _)] = submit(accounts, "voice", "notify", mobiles(2), content="您好")
    execute(update(Chunk).where(Chunk.id == chunk_id).values(request_id="theirs"))
    # when: the claim expects the request id it read
    with session_scope() as session:
        won, batch = claim_with_batch(session, chunk_id=chunk_id, request_id_before=None, request_id="mine",
                                      request_id_at=utcnow(), now=utcnow(), job_id=done.id, lo=0, hi=2)
    # then: nothing is claimed and the chunk keeps the other worker's id
    assert (won, batch) == (None, [])
    chunk = rows(Chunk, id=chunk_id)[0]
    assert (chunk.status, chunk.attempts, chunk.request_id) == (ChunkStatus.PENDING, 0, "theirs")


postgresql_only = pytest.mark.skipif(TEST_DB != "postgresql", reason="a server connection pool: PostgreSQL")


def own_engine():
    """An engine with a pool of its own (get_engine's settings, not its cached instance)."""
    from models.db import default_database_url

    return get_engine.__wrapped__(default_database_url())


def last_statement(pid: int) -> str:
    """The last statement a backend ran, seen from another connection."""
    with get_engine(None).connect() as other:
        return other.execute(text("SELECT query FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar()


def checked_out(engine) -> tuple[int, str]:
    """(pid, last statement) of the connection the pool hands out next, once it is handed out."""
    raw = engine.raw_connection()  # the checkout, with whatever ping it makes
    try:
        pid = raw.driver_connection.info.backend_pid
        return pid, last_statement(pid)
    finally:
        raw.close()


@postgresql_only
def test_a_connection_used_moments_ago_is_not_pinged_and_an_idle_one_is(monkeypatch):
    # given: a pool of one connection, just used and given back (the pool ends its transaction)
    engine = own_engine()
    try:
        with engine.connect() as conn:
            pid = conn.connection.driver_connection.info.backend_pid
            conn.execute(text("SELECT 'the last statement'"))
        last = last_statement(pid)
        # when: it is checked out again at once: then nothing was sent on it
        assert checked_out(engine) == (pid, last)
        # when: it has been idle longer than the limit: then it was pinged first
        monkeypatch.setattr("models.db.PING_AFTER_IDLE_S", 0.05)
        time.sleep(0.1)
        again, query = checked_out(engine)
        assert again == pid and query.strip() in (";", "SELECT 1"), query
    finally:
        engine.dispose()


@postgresql_only
def test_a_pooled_connection_the_server_closed_is_replaced_before_use():
    # given: a pool whose idle connection's backend the server terminated a moment ago
    engine = own_engine()
    try:
        with engine.connect() as conn:
            pid = conn.connection.driver_connection.info.backend_pid
        with get_engine(None).connect() as other:
            assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with get_engine(None).connect() as other:
                if not other.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                     {"pid": pid}).scalar():
                    break
            time.sleep(0.02)
        # when: the pool hands out a connection and a statement runs on it
        with engine.connect() as conn:
            fresh = conn.connection.driver_connection.info.backend_pid
            # then: it works, on a new backend: the closed one was seen and replaced, not handed out
            assert conn.execute(text("SELECT 1")).scalar() == 1
        assert fresh != pid
    finally:
        engine.dispose()
