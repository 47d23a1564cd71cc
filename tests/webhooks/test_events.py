"""Events come from the database itself (migration 0006's triggers): every status change of a message or a job
with a receiver, in the transaction of the change, nothing for a rollback or a job without a receiver. Plus the
receiver a job gets at submit (callback_url, the default), and the answers to bad input."""
from __future__ import annotations

import itertools
from datetime import datetime

import orjson

import pytest
from sqlalchemy import select, update

from models import Job, Message, WebhookEvent, session_scope, utcnow
from models.statuses import JobStatus, MessageStatus
from msgrelay.settings import get_settings, reload_settings
from msgrelay.webhooks import events, policy, receivers
from providers.errors import InvalidInput

pytestmark = [pytest.mark.db, pytest.mark.usefixtures("database")]
URL = "http://127.0.0.1:9/webhooks-db-test"  # nothing listens: the stack's worker (if up) fails to deliver these
_uids = itertools.count()


def new_job(*, receiver: bool = True, statuses: tuple[str, ...] = (MessageStatus.QUEUED,), job_status=JobStatus.RUNNING,
            ) -> tuple[int, list[int]]:
    """A job (with or without a receiver) and one message per status given; (job id, message ids)."""
    now = utcnow()
    with session_scope() as session:
        rid = receivers.receiver_id(session, URL) if receiver else None
        job = Job(uid=f"whdb{next(_uids)}x{now.timestamp():.0f}", account="a", provider="emay_voice", kind="notify",
                  status=job_status, webhook_receiver_id=rid)
        session.add(job)
        session.flush()
        msgs = [Message(job_id=job.id, seq=i, mobile=f"1380000{i:04d}", custom_id=f"{job.uid}-{i}", status=s)
                for i, s in enumerate(statuses)]
        session.add_all(msgs)
        session.flush()
        return job.id, [m.id for m in msgs]


def job_events(job_id: int) -> list[WebhookEvent]:
    with session_scope() as session:
        return list(session.scalars(select(WebhookEvent).where(WebhookEvent.job_id == job_id).order_by(WebhookEvent.id)))


def set_message(message_id: int, status: str, **values) -> None:
    with session_scope() as session:
        session.execute(update(Message).where(Message.id == message_id).values(status=status, **values))


def set_job(job_id: int, status: str, reason: str | None = None) -> None:
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=status, reason=reason))


M = MessageStatus


@pytest.mark.parametrize(("before", "after", "event"), [
    (M.QUEUED, M.SUBMITTED, "message.submitted"),
    (M.QUEUED, M.REJECTED, "message.rejected"),
    (M.QUEUED, M.UNKNOWN, "message.unknown"),
    (M.QUEUED, M.FAILED, "message.failed"),
    (M.SUBMITTED, M.DELIVERED, "message.delivered"),
    (M.SUBMITTED, M.FAILED, "message.failed"),
    (M.SUBMITTED, M.EXPIRED, "message.expired"),
    (M.UNKNOWN, M.EXPIRED, "message.expired"),
    (M.EXPIRED, M.DELIVERED, "message.delivered"),  # a late real report
    (M.SUBMITTED, M.SUBMITTED, None),                # only the provider's state changed
    (M.QUEUED, M.QUEUED, None),
])
def test_a_message_status_change_is_one_event(before, after, event):
    job_id, (mid,) = new_job(statuses=(before,))
    first = [e.id for e in job_events(job_id)]
    set_message(mid, after, provider_state="ST", provider_desc="the provider's words")
    # the message's events only: a job whose one message is already final may be finalized meanwhile by the
    # session's running sweeper (a `job.done` of its own, which the job-event tests cover)
    made = [e for e in job_events(job_id) if e.id not in first and e.message_id is not None]
    if event is None:
        assert made == []
    else:
        assert [(e.type, e.status, e.message_id, e.provider_state, e.provider_desc) for e in made] == [
            (event, after, mid, "ST", "the provider's words")]


@pytest.mark.parametrize(("status", "event"), [(s, f"message.{s}") for s in M if s != M.QUEUED] + [(M.QUEUED, None)])
def test_a_message_inserted_in_a_status_is_an_event_unless_queued(status, event):
    job_id, (mid,) = new_job(statuses=(status,))
    # (the message's events only: the session's sweeper may finalize a job whose one message is final)
    assert [(e.type, e.message_id) for e in job_events(job_id) if e.message_id is not None] == (
        [(event, mid)] if event else [])


J = JobStatus


@pytest.mark.parametrize(("before", "after", "reason", "event"), [
    (J.RUNNING, J.PAUSED, "balance: 余额不足", "job.paused"),
    (J.QUEUED, J.PAUSED, "operator", "job.paused"),
    (J.PAUSED, J.RUNNING, None, "job.resumed"),
    (J.PAUSED, J.QUEUED, None, "job.resumed"),   # resumed, waiting for its send_at
    (J.RUNNING, J.DONE, None, "job.done"),
    (J.RUNNING, J.CANCELLED, "operator", "job.cancelled"),
    (J.QUEUED, J.RUNNING, None, None),           # a scheduled job released: not an event of the contract
    (J.PAUSED, J.PAUSED, "credentials: x", None),
])
def test_a_job_status_change_is_an_event_with_reason_and_counts(before, after, reason, event):
    job_id, _ = new_job(statuses=(M.QUEUED, M.DELIVERED, M.DELIVERED, M.FAILED), job_status=before)
    set_job(job_id, after, reason)
    made = [e for e in job_events(job_id) if e.message_id is None]
    if event is None:
        assert made == []
        return
    (e,) = made
    assert (e.type, e.status, e.reason) == (event, after, reason)
    (told,) = [b for b in bodies(job_id) if b["type"].startswith("job.")]
    assert told["counts"] == {**{s.value: 0 for s in M}, "queued": 1, "delivered": 2, "failed": 1}


def test_a_job_without_a_receiver_makes_no_events():
    job_id, (mid,) = new_job(receiver=False, statuses=(M.REJECTED,))
    set_message(mid, M.SUBMITTED)
    set_job(job_id, J.DONE)
    assert job_events(job_id) == []


def test_a_rolled_back_change_takes_its_events_with_it():
    job_id, (mid,) = new_job()
    with pytest.raises(RuntimeError):
        with session_scope() as session:
            session.execute(update(Message).where(Message.id == mid).values(status=M.SUBMITTED))
            session.execute(update(Job).where(Job.id == job_id).values(status=J.PAUSED, reason="operator"))
            assert len(session.scalars(select(WebhookEvent.id).where(WebhookEvent.job_id == job_id)).all()) == 2
            raise RuntimeError("rolled back")
    assert job_events(job_id) == []


def bodies(job_id: int) -> list[dict]:
    """The job's events as a receiver would get them (built by the same SQL as a delivery's body)."""
    ids = [e.id for e in job_events(job_id)]
    with session_scope() as session:
        return orjson.loads(events.events_body(session, ids))["events"]


def test_seq_increases_per_message_and_one_statement_makes_one_event_per_row():
    job_id, mids = new_job(statuses=(M.QUEUED,) * 50)
    with session_scope() as session:  # one set-based statement for all 50
        session.execute(update(Message).where(Message.job_id == job_id).values(status=M.SUBMITTED))
    for status in (M.EXPIRED, M.DELIVERED):
        set_message(mids[7], status)
    made = bodies(job_id)
    assert len(made) == 52 and len({e["id"] for e in made}) == 52
    seven = [e for e in made if e["custom_id"].endswith("-7")]
    assert [b["type"] for b in seven] == ["message.submitted", "message.expired", "message.delivered"]
    assert [b["seq"] for b in seven] == sorted(b["seq"] for b in seven) and len({b["seq"] for b in seven}) == 3


def test_event_bodies_have_the_contract_fields_and_types():
    job_id, (mid,) = new_job(statuses=(M.DELIVERED,))
    set_message(mid, M.DELIVERED, provider_state="DELIVRD")  # unchanged status: no second event
    set_job(job_id, J.DONE)
    message_event, job_event = bodies(job_id)
    assert set(message_event) == {"id", "type", "created_at", "job_id", "account", "kind", "custom_id", "mobile",
                                  "status", "provider_state", "provider_desc", "seq"}
    assert set(job_event) == {"id", "type", "created_at", "job_id", "status", "reason", "counts"}
    assert isinstance(message_event["id"], str) and message_event["id"].startswith("evt_")
    assert isinstance(message_event["seq"], int) and message_event["id"] == f"evt_{message_event['seq']}"
    assert message_event["job_id"] == job_id and (message_event["account"], message_event["kind"]) == ("a", "notify")
    assert message_event["mobile"] == "13800000000" and message_event["provider_state"] is None
    for e in (message_event, job_event):
        assert datetime.fromisoformat(e["created_at"].replace("Z", "+00:00")).tzinfo is not None
        assert e["created_at"].endswith("Z")
    assert job_event["counts"] == {**{s.value: 0 for s in M}, "delivered": 1}
    assert (job_event["type"], job_event["status"], job_event["reason"]) == ("job.done", "done", None)


@pytest.mark.parametrize(("url", "rule"), [
    ("ftp://example.com/x", "must be an http:// or https:// URL"),
    ("example.com/x", "must be an http:// or https:// URL"),
    ("http:///path", "must name a host"),
    ("http://exa mple.com/", "must not contain spaces"),
    ("http://example.com:99999/", "is not a valid URL"),
    ("https://example.com/" + "x" * 2000, "must be at most 2000 characters"),
    ("", "must be an http:// or https:// URL"),
])
def test_bad_callback_urls_are_refused_naming_the_field(url, rule):
    with pytest.raises(InvalidInput) as caught:
        receivers.receiver_url(url, None)
    assert caught.value.field == "callback_url" and caught.value.rule.startswith(rule)


def test_callback_url_overrides_the_default_and_jobs_share_a_receiver_row(monkeypatch):
    from msgrelay.submit import submit_job
    from tests.e2e.conftest import accounts_toml
    from msgrelay.accounts import parse_accounts
    accounts = parse_accounts(accounts_toml("http://127.0.0.1:9"))
    monkeypatch.setenv("MSGRELAY_WEBHOOK_URL", "https://default.example/hook")
    reload_settings()
    try:
        ids = [submit_job(accounts=accounts, account="voice", kind="notify", content="x", recipients=["13800000001"],
                          enqueue=lambda chunks, call=None: None, send_at=utcnow().replace(year=2099), callback_url=cb).id
               for cb in ("https://own.example/a", None, None)]
    finally:
        monkeypatch.delenv("MSGRELAY_WEBHOOK_URL")
        reload_settings()
    with session_scope() as session:
        from models import WebhookReceiver
        urls = [session.get(WebhookReceiver, session.get(Job, i).webhook_receiver_id).url for i in ids]
    assert urls == ["https://own.example/a", "https://default.example/hook", "https://default.example/hook"]
    assert get_settings().webhook_url is None


@pytest.mark.parametrize(("url", "shown"), [
    ("https://hooks.example/msgrelay", "https://hooks.example/msgrelay"),
    ("https://hooks.example:8443/a/b?token=abc&x=1", "https://hooks.example:8443/a/b?token=***&x=***"),
    ("http://user:pw@127.0.0.1:9/p?t=", "http://user:***@127.0.0.1:9/p?t=***"),
    ("https://user@hooks.example/p", "https://user@hooks.example/p"),
    ("https://[::1]:80/x?opaque", "https://[::1]:80/x?opaque=***"),
    ("https://hooks.example/p#fragment-token", "https://hooks.example/p"),
    ("https://hooks.example:99999/p?token=abc", "***"),
])
def test_operators_see_receiver_urls_without_passwords_or_query_values(url, shown):
    assert receivers.shown_url(url) == shown


@pytest.mark.parametrize(("tries", "low", "high"), [(1, 0.2, 0.4), (2, 0.4, 0.8), (3, 0.8, 1.6), (4, 1.6, 3.2),
                                                    (5, 1.6, 3.2), (40, 1.6, 3.2)])
def test_backoff_doubles_with_jitter_up_to_its_cap(tries, low, high):
    s = get_settings()  # base 0.4, max 3.2 (tests/webhooks/conftest.py)
    waits = [policy.next_wait_s(tries, s) for _ in range(200)]
    assert low <= min(waits) and max(waits) <= high and max(waits) - min(waits) > (high - low) / 4


def test_dead_only_after_the_horizon():
    s = get_settings()  # horizon 20 s (tests/webhooks/conftest.py)
    start = utcnow()
    from datetime import timedelta
    assert not policy.is_dead(start, start + timedelta(seconds=19.9), s)
    assert policy.is_dead(start, start + timedelta(seconds=20), s)
