"""The sending policy against the database and the simulator, no worker: send windows hold and release, the
suppression list and frequency caps reject before any provider call, validity expires what is unsent. The clock
is set through the account's time zone, never by waiting for hours."""
from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from models import (
    Chunk,
    FrequencyCount,
    Job,
    Message,
    Suppression,
    session_scope,
    utcnow,
)
from models.statuses import ChunkStatus, HeldBack, JobStatus, MessageStatus
from msgrelay.inbound import store_inbound
from msgrelay.jobs import pause_job, resume_job, view_job
from msgrelay.policy import suppressions
from msgrelay.send import send_chunk
from msgrelay.sweep import sweep
from providers.base import Inbound
from providers.errors import InvalidInput
from tests.conftest import zone_at
from tests.core.conftest import execute, mobiles, rows, submit

WINDOW = "09:00-20:00"


def with_policy(accounts: dict, name: str, **policy) -> dict:
    """The accounts with `name`'s sending policy set (same credentials, so the simulator knows it)."""
    return {**accounts, name: accounts[name].model_copy(update=policy)}


def sent_to(sim, endpoint: str) -> Counter:
    """How many times the simulator accepted each mobile at `endpoint`."""
    return Counter(x["mobile"] for r in sim.accepted(endpoint) for x in r["recipients"])


def send_all(published, accounts, settings) -> list[str]:
    """Run send_chunk for every (chunk, queue) published; the outcomes' details."""
    return [send_chunk(cid, settings=settings, accounts=accounts).detail for cid, _ in published]


def test_a_closed_window_holds_marketing_and_the_sweep_releases_it_when_the_window_opens(sim, accounts, settings):
    closed = with_policy(accounts, "voice", send_windows={"marketing": WINDOW}, timezone=zone_at(3))
    people = mobiles(3)
    # when: a marketing job and a verification call are submitted at 03:00 local time
    held, published = submit(closed, "voice", "marketing", people, content="周末特惠")
    code, code_published = submit(closed, "voice", "vfcode", people[:1], content="1234")
    # then: the marketing job waits (nothing published), the verification call goes at once
    assert published == [] and len(code_published) == 1
    with session_scope() as session:
        view = view_job(session, held.id).as_dict()
    assert view["status"] == JobStatus.RUNNING and view["waiting"] == "send window opens 09:00"
    assert datetime.fromisoformat(view["waiting_until"]) > utcnow()
    assert send_all(code_published, closed, settings) == ["1 of 1 accepted"]
    # a chunk that runs anyway (a sweep of a stale chunk, a redelivery) is held again, no provider call
    (chunk,) = rows(Chunk, job_id=held.id)
    assert send_all([(chunk.id, "bulk")], closed, settings) == ["held: send window opens 09:00"]
    assert not sent_to(sim, "/voice/sendCTCode")
    # a sweep with the window still closed releases nothing
    assert sweep(settings, closed).released_windows == 0
    # when: the clock reaches 10:00 local time (the account's zone moves), the sweep releases the job
    opened = with_policy(accounts, "voice", send_windows={"marketing": WINDOW}, timezone=zone_at(10))
    result = sweep(settings, opened)
    assert result.released_windows == 1 and chunk.id in {cid for cid, _ in result.enqueue}
    send_all([(chunk.id, "bulk")], opened, settings)
    assert sorted(sent_to(sim, "/voice/sendCTCode")) == sorted(people)
    with session_scope() as session:
        assert view_job(session, held.id).as_dict()["waiting"] is None


def test_a_window_that_closes_mid_job_stops_it_between_chunks(sim, accounts, settings):
    opened = with_policy(accounts, "voice", send_window=WINDOW, timezone=zone_at(12), max_batch=2)
    closed = with_policy(accounts, "voice", send_window=WINDOW, timezone=zone_at(21), max_batch=2)
    people = mobiles(6)
    done, published = submit(opened, "voice", "notify", people, content="您好")
    assert len(published) == 3
    first, *rest = published
    assert send_all([first], opened, settings) == ["2 of 2 accepted"]
    # when: the window closes after the first chunk
    assert send_all(rest, closed, settings) == ["held: send window opens 09:00"] * 2
    # then: the rest wait, pending, until the window opens
    assert sorted(sent_to(sim, "/voice/send")) == sorted(people[:2])
    assert [c.status for c in rows(Chunk, job_id=done.id)] == [ChunkStatus.SENT, ChunkStatus.PENDING,
                                                               ChunkStatus.PENDING]
    assert all(c.next_attempt_at > utcnow() + timedelta(hours=1) for c in rows(Chunk, job_id=done.id)[1:])


def test_suppressed_recipients_are_rejected_at_submit_and_right_before_sending(sim, accounts, settings):
    a, b, c, d = mobiles(4)
    suppressions.add(accounts, b, scope="voice", reason="complained")
    suppressions.add(accounts, "+86 " + c, reason="every account")  # another form of the same phone, scope *
    suppressions.add(accounts, a, scope="voice_b")  # another account's list: not this one's
    done, published = submit(accounts, "voice", "notify", [a, b, c, d], content="您好")
    # then: b and c are rejected at submit, counted on the job
    status = {m.mobile: (m.status, m.provider_state) for m in rows(Message, job_id=done.id)}
    assert status[b] == status[c] == (MessageStatus.REJECTED, HeldBack.SUPPRESSED)
    # when: d opts out after the submit, before the chunk is sent
    suppressions.add(accounts, d, scope="voice")
    assert send_all(published, accounts, settings) == ["1 of 1 accepted"]
    # then: only a reached the provider; the job shows how many were held back and why
    assert list(sent_to(sim, "/voice/send")) == [a]
    with session_scope() as session:
        view = view_job(session, done.id).as_dict()
    assert view["held_back"] == {"SUPPRESSED": 3, "FREQUENCY_CAP": 0, "NOT_SENT_IN_TIME": 0}
    assert view["counts"]["rejected"] == 3
    # a verification call is never suppressed
    code, code_published = submit(accounts, "voice", "vfcode", [b], content="1234")
    assert send_all(code_published, accounts, settings) == ["1 of 1 accepted"]


@pytest.mark.parametrize(("mobile", "scope", "field"), [
    ("12", None, "mobile"), ("", None, "mobile"), ("138001380001380013800138", None, "mobile"),
    ("13800138000", "nobody", "scope"), ("13800138000", 5, "scope"),
])
def test_a_bad_suppression_names_the_field(accounts, mobile, scope, field):
    with pytest.raises(InvalidInput) as caught:
        suppressions.add(accounts, mobile, scope=scope)
    assert caught.value.field == field


def test_opt_out_replies_suppress_the_mobile_for_that_account(accounts):
    people = mobiles(7)
    replies = ["TD", "td", "ＴＤ", " 退订 ", "R", "收到，谢谢", "TD 谢谢"]
    store_inbound(accounts["sms"], [Inbound(mobile=m, content=t, received_at=utcnow(), task_id=None,
                                            dest_code=None, raw={}) for m, t in zip(people, replies)])
    listed = {s["mobile"]: s for s in suppressions.listed(scope="sms", limit=1000)}
    assert set(listed) & set(people) == set(people[:5])
    assert listed[people[2]]["source"] == "inbound" and "ＴＤ" in listed[people[2]]["reason"]
    # a voice account has no opt-out words: its replies suppress nothing
    store_inbound(accounts["voice"], [Inbound(mobile=people[6], content="TD", received_at=utcnow(), task_id=None,
                                              dest_code=None, raw={})])
    assert not suppressions.listed(mobile=people[6])


def test_a_frequency_cap_rejects_the_third_message_of_the_day_for_that_mobile_only(sim, accounts, settings):
    capped = with_policy(accounts, "voice", frequency_cap="2/day")
    often, once = mobiles(2)
    results = []
    for _ in range(3):
        done, published = submit(capped, "voice", "notify", [often] if results else [often, once], content="您好")
        send_all(published, capped, settings)
        results.append({m.mobile: (m.status, m.provider_state) for m in rows(Message, job_id=done.id)})
    assert results[2][often] == (MessageStatus.REJECTED, HeldBack.FREQUENCY_CAP)
    assert results[0][once][0] == results[1][often][0] == MessageStatus.SUBMITTED
    assert sent_to(sim, "/voice/send")[often] == 2
    with session_scope() as session:
        assert view_job(session, done.id).as_dict()["held_back"]["FREQUENCY_CAP"] == 1


def test_a_retried_chunk_counts_its_recipients_once(sim, accounts, settings):
    capped = with_policy(accounts, "voice", frequency_cap="2/day")
    (mobile,) = mobiles(1)
    sim.faults(error_5xx_rate=1.0)
    done, published = submit(capped, "voice", "notify", [mobile], content="您好")
    (chunk_id, _), = published
    assert send_chunk(chunk_id, settings=settings, accounts=capped).action == "retry"
    sim.faults()
    execute(update(Chunk).where(Chunk.id == chunk_id).values(next_attempt_at=utcnow()))
    assert send_chunk(chunk_id, settings=settings, accounts=capped).action == "done"
    with session_scope() as session:
        assert session.scalar(select(func.sum(FrequencyCount.n)).where(FrequencyCount.mobile == mobile)) == 1


def test_concurrent_jobs_never_let_a_mobile_past_its_cap(sim, accounts, settings):
    capped = with_policy(accounts, "voice", frequency_cap=["3/day", "5/hour"])
    shared = mobiles(1)[0]
    jobs = [submit(capped, "voice", "notify", [shared, *mobiles(20)], content="您好") for _ in range(8)]
    barrier = threading.Barrier(len(jobs))

    def send(published) -> None:
        barrier.wait()
        send_all(published, capped, settings)

    threads = [threading.Thread(target=send, args=(published,)) for _, published in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sent_to(sim, "/voice/send")[shared] == 3
    states = Counter(m.provider_state for done, _ in jobs for m in rows(Message, job_id=done.id)
                     if m.mobile == shared)
    assert states[HeldBack.FREQUENCY_CAP] == 5


def test_past_valid_until_a_paused_job_expires_unsent_and_ends_done_on_resume(sim, accounts, settings):
    done, published = submit(accounts, "voice", "notify", mobiles(5), content="您好",
                             valid_until=utcnow() + timedelta(hours=1))
    with session_scope() as session:
        pause_job(session, done.id, "operator")
    execute(update(Job).where(Job.id == done.id).values(valid_until=utcnow() - timedelta(seconds=1)))
    # when: the sweep runs while the job is paused, then the operator resumes it
    assert sweep(settings, accounts).expired_unsent == 5
    with session_scope() as session:
        assert resume_job(session, done.id) == []
    sweep(settings, accounts)
    # then: nothing was sent; every message expired NOT_SENT_IN_TIME; the job is done
    assert not sim.accepted()
    assert {(m.status, m.provider_state) for m in rows(Message, job_id=done.id)} == {
        (MessageStatus.EXPIRED, HeldBack.NOT_SENT_IN_TIME)}
    with session_scope() as session:
        view = view_job(session, done.id).as_dict()
    assert view["status"] == JobStatus.DONE and view["held_back"]["NOT_SENT_IN_TIME"] == 5
    # a chunk that runs after valid_until sends nothing either
    late, late_published = submit(accounts, "voice", "notify", mobiles(2), content="您好",
                                  valid_until=utcnow() + timedelta(hours=1))
    execute(update(Job).where(Job.id == late.id).values(valid_until=utcnow() - timedelta(seconds=1)))
    assert send_all(late_published, accounts, settings) == ["valid_until passed: 2 expired unsent"]
    assert rows(Job, id=late.id)[0].status == JobStatus.DONE and not sim.accepted()


@pytest.mark.parametrize(("valid_until", "send_at", "rule"), [
    (datetime(2026, 12, 5, 8, 0), None, "time zone"),
    (datetime(2020, 1, 1, tzinfo=UTC), None, "already passed"),
    (datetime(2999, 1, 1, 8, tzinfo=UTC), datetime(2999, 1, 1, 9, tzinfo=UTC), "after send_at"),
])
def test_a_bad_valid_until_is_refused_naming_it(accounts, valid_until, send_at, rule):
    with pytest.raises(InvalidInput) as caught:
        submit(accounts, "voice", "notify", mobiles(1), content="您好", valid_until=valid_until, send_at=send_at)
    assert caught.value.field == "valid_until" and rule in caught.value.rule


def test_the_suppression_list_is_one_row_per_scope_and_mobile(accounts):
    (mobile,) = mobiles(1)
    first, new = suppressions.add(accounts, mobile, scope="voice", reason="first")
    again, new_again = suppressions.add(accounts, "0086" + mobile, scope="voice", reason="second")
    assert (new, new_again) == (True, False) and again["reason"] == "first"
    suppressions.remove(mobile, scope="voice")
    with session_scope() as session:
        assert not session.scalars(select(Suppression).where(Suppression.mobile == mobile)).all()
    with pytest.raises(InvalidInput):
        suppressions.remove(mobile, scope="voice")
