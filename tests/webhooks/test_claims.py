"""Claims read a receiver's events after its cursor and never write an event row (migration 0007): no event is
passed by the cursor while its transaction is still open, none is claimed twice, and an upgrade from 0006 keeps
what was claimed and what was not."""
from __future__ import annotations

import itertools
import threading
import time

import orjson

import pytest
from sqlalchemy import select, text, update

from models import Message, WebhookDelivery, WebhookEvent, WebhookReceiver, get_engine, session_scope, utcnow
from models.statuses import MessageStatus
from msgrelay.settings import get_settings
from msgrelay.webhooks import deliver, events
from tests.e2e.conftest import wait_until
from tests.webhooks.test_events import new_job

pytestmark = [pytest.mark.db, pytest.mark.usefixtures("database")]
# The e2e stack's worker may be running (other tests of the session started it): its dispatcher may claim some of
# these events too. Each test's receiver is a real one answering 204, so those deliveries succeed and never block
# ours (a failing one would), and the checks count what either side claimed.
M = MessageStatus
_urls = itertools.count()


def own_receiver_job(n: int, url: str) -> tuple[int, int, list[int]]:
    """A job of `n` queued messages whose receiver is its own (no other test's events): (receiver, job, messages)."""
    job_id, mids = new_job(statuses=(M.QUEUED,) * n)
    with session_scope() as session:
        receiver = WebhookReceiver(url=f"{url}?claims-{next(_urls)}-{utcnow().timestamp()}")
        session.add(receiver)
        session.flush()
        session.execute(text("UPDATE job SET webhook_receiver_id = :r WHERE id = :j"), {"r": receiver.id, "j": job_id})
        return receiver.id, job_id, mids


def claim_all(receiver_id: int) -> list[list[str]]:
    """Claim new events until none is left; the event ids of each body as a POST would send it right after its
    claim (deliveries stay `sending`: nothing is posted)."""
    sent = []
    while (claimed := deliver.claim(receiver_id, get_settings())) is not None:
        sent.append([e["id"] for e in orjson.loads(claimed[1])["events"]])
    return sent


def delivered_ids(receiver_id: int) -> list[list[str]]:
    """The event ids of each of the receiver's deliveries, in delivery order, read from their bodies."""
    with session_scope() as session:
        ids = session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.receiver_id == receiver_id)
                              .order_by(WebhookDelivery.id)).all()
        return [[e["id"] for e in orjson.loads(events.delivery_body(session, d))["events"]] for d in ids]


def event_rows(job_id: int) -> list[tuple]:
    """The job's event rows as stored: every column, and on PostgreSQL where the row version lives (an UPDATE,
    even one that changes nothing, moves it)."""
    with session_scope() as session:
        where = "" if session.get_bind().dialect.name == "sqlite" else "ctid::text, xmin::text, "
        return [tuple(r) for r in session.execute(text(
            f"SELECT {where}* FROM webhook_event WHERE job_id = :j ORDER BY id"), {"j": job_id})]


def posted(receiver) -> list[list[str]]:
    """The event ids of each request the stack's worker (if up) posted to the test's receiver."""
    return [[e["id"] for e in r.events] for r in receiver.received]


def test_claims_split_the_events_in_order_and_write_no_event_row(receiver):
    receiver_id, job_id, mids = own_receiver_job(1_234, receiver.url)
    with session_scope() as session:
        session.execute(update(Message).where(Message.job_id == job_id).values(status=M.SUBMITTED))
        made = [events.event_id(i) for i in session.scalars(
            select(WebhookEvent.id).where(WebhookEvent.job_id == job_id).order_by(WebhookEvent.xid, WebhookEvent.id))]
    before = event_rows(job_id)
    sent = claim_all(receiver_id)
    assert [len(d) for d in delivered_ids(receiver_id)] == [500, 500, 234]
    assert sum(delivered_ids(receiver_id), []) == made
    assert all(body in delivered_ids(receiver_id) for body in sent)
    assert event_rows(job_id) == before


@pytest.mark.parametrize("first_xid", ["late", "early"])
def test_an_event_committed_after_a_newer_one_is_not_passed_by_the_cursor(database, first_xid, receiver):
    """Transaction `late` writes an event (the lower id), `early` another and commits first; `late` commits after
    a claim. Whichever took its transaction id first, a cursor must not pass `late`'s event: by id it would (case
    early), by xid without the running-transaction horizon it would (case late)."""
    if database.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: ids commit in order (xid stays 0)")
    receiver_id, job_id, (m_late, m_early) = own_receiver_job(2, receiver.url)
    engine = get_engine(database)
    with engine.connect() as late, engine.connect() as early:
        for conn in ((late, early) if first_xid == "late" else (early, late)):
            conn.execute(text("SELECT pg_current_xact_id()"))
        late.execute(update(Message).where(Message.id == m_late).values(status=M.SUBMITTED))
        early.execute(update(Message).where(Message.id == m_early).values(status=M.SUBMITTED))
        early.commit()
        sent = claim_all(receiver_id)
        late.commit()
    sent += claim_all(receiver_id)
    # both events claimed, by this test or by the stack's worker (whose claim may still have been open when this
    # test's found nothing), and each claim sent or posted
    expected = sorted(events.event_id(event_of(m)) for m in (m_late, m_early))
    wait_until(lambda: sorted(sum(delivered_ids(receiver_id), [])) == expected
               and len(sent) + len(posted(receiver)) >= len(delivered_ids(receiver_id)), timeout_s=10,
               what="both events claimed once, and the stack worker's posts of what it claimed")
    # every event sent once, as each body was when first sent (what a retry would send is what that try sent)
    first_tries = sent + posted(receiver)
    assert sorted(sum(first_tries, [])) == expected
    assert sorted(first_tries) == sorted(delivered_ids(receiver_id))
    assert event_of(m_late) < event_of(m_early)  # the id order a cursor must not follow


def event_of(message_id: int) -> int:
    with session_scope() as session:
        return session.scalars(select(WebhookEvent.id).where(WebhookEvent.message_id == message_id)).one()


def retried_on_deadlock(migrate, tries: int = 5) -> None:
    """Run a migration, again when PostgreSQL chose it as a deadlock's victim: it runs in one transaction (so a
    victim changed nothing) while the session's worker keeps querying the tables it locks, in its own order."""
    from sqlalchemy.exc import OperationalError
    for attempt in range(tries):
        try:
            migrate()
            return
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "40P01" or attempt == tries - 1:
                raise


def test_the_upgrade_keeps_claimed_events_claimed_and_the_rest_waiting(database, receiver):
    from alembic import command

    from models.migrate import alembic_config, upgrade
    receiver_id, job_id, mids = own_receiver_job(5, receiver.url)
    # the events and a cursor past them in one transaction: a running webhooks worker never sees them unclaimed.
    # The cursor is (xid, id): past the last event by id alone it would stay before events of this transaction's
    # xid, and that worker could claim all five before the downgrade (CI saw it: its delivery took events 3-4).
    with session_scope() as session:
        session.execute(update(Message).where(Message.job_id == job_id).values(status=M.SUBMITTED))
        ids = list(session.scalars(select(WebhookEvent.id).where(WebhookEvent.job_id == job_id)
                                   .order_by(WebhookEvent.id)))
        session.execute(text("UPDATE webhook_receiver SET (cursor_xid, cursor_id) = (SELECT xid, id FROM webhook_event "
                             "WHERE receiver_id = :r ORDER BY xid DESC, id DESC LIMIT 1) WHERE id = :r"),
                        {"r": receiver_id})
    assert deliver.claim(receiver_id, get_settings()) is None  # nothing left to claim for anyone
    retried_on_deadlock(lambda: command.downgrade(alembic_config(database), "0006"))
    try:
        with get_engine(database).begin() as conn:  # under 0006: events 0-2 claimed by one delivery, 3-4 not
            delivery = conn.execute(text(
                "INSERT INTO webhook_delivery (receiver_id, status, events, attempts, next_attempt_at, created_at, "
                "updated_at) VALUES (:r, 'failing', 3, 1, :now, :now, :now) RETURNING id"),
                {"r": receiver_id, "now": utcnow()}).scalar_one()
            conn.execute(text("UPDATE webhook_event SET delivery_id = :d WHERE id IN (:a, :b, :c)"),
                         {"d": delivery, "a": ids[0], "b": ids[1], "c": ids[2]})
    finally:
        retried_on_deadlock(lambda: upgrade(database))
    assert delivered_ids(receiver_id)[0] == [events.event_id(i) for i in ids[:3]]
    with session_scope() as session:
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery).values(status="delivered"))
    claim_all(receiver_id)
    assert sum(delivered_ids(receiver_id)[1:], []) == [events.event_id(i) for i in ids[3:]]



def test_a_claim_reads_only_the_events_it_takes_however_many_wait(database, receiver):
    """A claim walks the receiver's index in order and stops after a batch. Planned from estimates (an outbox just
    grown, no statistics yet) it read every waiting event and sorted them: its cost grew with the backlog."""
    if database.startswith("sqlite"):
        pytest.skip("SQLite reads the index in order by itself")
    receiver_id, job_id, _ = own_receiver_job(1, receiver.url)
    with session_scope() as session:  # a backlog of job events (cheap to make), committed: claimable
        session.execute(text("INSERT INTO webhook_event (receiver_id, job_id, type, status, created_at) "
                             "SELECT :r, :j, 'job.resumed', 'running', now() FROM generate_series(1, 100000)"),
                        {"r": receiver_id, "j": job_id})
    read = ("SELECT pg_stat_get_xact_tuples_returned('ix_webhook_event_receiver_order'::regclass) "
            "+ pg_stat_get_xact_tuples_returned('webhook_event'::regclass)")  # this transaction's, index and scans
    with session_scope() as session:
        waiting = session.scalar(text(
            "SELECT count(*) FROM webhook_event e JOIN webhook_receiver w ON w.id = e.receiver_id "
            "WHERE w.id = :r AND (e.xid, e.id) > (w.cursor_xid, w.cursor_id)"), {"r": receiver_id})
        before = session.scalar(text(read))
        claimed = deliver.claim_new(session, receiver_id, 500, utcnow())
        entries = session.scalar(text(read)) - before
        # the rest claimed at once (the session's stack worker would otherwise deliver it)
        session.execute(text("UPDATE webhook_receiver SET (cursor_xid, cursor_id) = (SELECT xid, id FROM webhook_event "
                             "WHERE receiver_id = :r ORDER BY xid DESC, id DESC LIMIT 1) WHERE id = :r"),
                        {"r": receiver_id})
    # (that worker may have claimed part of the backlog first: what is left still dwarfs a batch)
    assert waiting > 50_000 and claimed is not None
    assert len(orjson.loads(claimed[1])["events"]) == 500
    assert entries <= 1_000, f"read {entries:,} events and index entries of {waiting:,} waiting to claim 500"


def test_a_drain_gives_way_to_a_verification_call_in_flight(receiver):
    from msgrelay import right_of_way
    from msgrelay.settings import Settings

    # given events waiting for a receiver, and a verification call in flight that reaches its provider in 0.4 s
    receiver_id, job_id, _ = own_receiver_job(3, receiver.url)
    with session_scope() as session:
        session.execute(update(Message).where(Message.job_id == job_id).values(status=M.SUBMITTED))
    right_of_way.call_started("test:held", ttl_ms=60_000)
    timer = threading.Timer(0.4, right_of_way.call_ended, ["test:held"])
    timer.start()
    try:
        # when the receiver's work is drained
        started = time.monotonic()
        done = deliver.drain(receiver_id, Settings(right_of_way_ms=2000), budget_s=5)
        took = time.monotonic() - started
    finally:
        timer.join()
        right_of_way.get_client().delete(right_of_way.KEY)
    # then the drain waited for the call, and the events went out after it (the stack's worker, when up, may have
    # delivered some of them: it gives way too, for its own bound)
    assert took >= 0.4, (took, done)
    wait_until(lambda: sum(len(body) for body in posted(receiver)) == 3, timeout_s=10, what="the 3 events posted")
