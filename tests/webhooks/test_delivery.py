"""Webhooks end to end: jobs sent through the simulator by the real worker, events delivered to a real HTTP
receiver (examples/webhook_receiver.py) that verifies signatures, and switched to fail, hang or go down."""
from __future__ import annotations

import time
from collections import defaultdict

import pytest
from sqlalchemy import select

from examples.webhook_receiver import Receiver
from models import WebhookEvent, session_scope
from msgrelay.webhooks.events import event_id
from tests.e2e.conftest import job_view, mobiles, nonzero, wait_done, wait_until

pytestmark = pytest.mark.e2e
CONTENT = "通知"


def submit(api, receiver: Receiver, n: int, prefix: str, account: str = "voice") -> int:
    answer = api.post("/v1/jobs", json={"account": account, "kind": "notify", "content": CONTENT,
                                        "recipients": mobiles(prefix, n), "callback_url": receiver.url})
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def deliveries(api, receiver: Receiver, status: str | None = None) -> list[dict]:
    params = {"limit": 1000, **({"status": status} if status else {})}
    answer = api.get("/v1/webhooks/deliveries", params=params)
    assert answer.status_code == 200, answer.text
    return [d for d in answer.json() if d["receiver_url"] == receiver.url]


def db_event_ids(job_id: int) -> set[str]:
    with session_scope() as session:
        return {event_id(i) for i in session.scalars(select(WebhookEvent.id).where(WebhookEvent.job_id == job_id))}


def received_ids(receiver: Receiver, job_id: int) -> set[str]:
    return {e["id"] for e in receiver.events() if e["job_id"] == job_id}


def all_messages(api, job_id: int) -> list[dict]:
    return api.get(f"/v1/jobs/{job_id}/messages", params={"limit": 10_000}).json()


def attempts_of(receiver: Receiver, delivery_id: str) -> list[float]:
    """Arrival times of the tries of one delivery (its X-Msgrelay-Delivery header)."""
    return [r.at for r in receiver.received if r.headers.get("X-Msgrelay-Delivery") == delivery_id]


def test_a_1234_recipient_job_tells_every_final_status_once_signed_and_in_order(api, sim, receiver):
    # given / when
    job_id = submit(api, receiver, 1234, "171")
    view = wait_done(job_id, timeout_s=120)
    final = {m["custom_id"]: m for m in all_messages(api, job_id)}
    assert len(final) == 1234

    def last_events() -> dict[str, dict]:
        last: dict[str, dict] = {}
        for e in receiver.events():
            if e["job_id"] == job_id and e["type"].startswith("message.") and (
                    e["custom_id"] not in last or e["seq"] > last[e["custom_id"]]["seq"]):
                last[e["custom_id"]] = e
        return last

    def told() -> bool:
        last = last_events()
        return len(last) == 1234 and all(last[c]["status"] == m["status"] for c, m in final.items()) and any(
            e["type"] == "job.done" and e["job_id"] == job_id for e in receiver.events())
    wait_until(told, timeout_s=90, what=lambda: f"final statuses told ({len(last_events())} messages so far)")
    # then: exactly as the API reports them
    last = last_events()
    for custom_id, m in final.items():
        e = last[custom_id]
        assert (e["status"], e["provider_state"], e["provider_desc"], e["mobile"]) == (
            m["status"], m["provider_state"], m["provider_desc"], m["mobile"]), custom_id
        assert e["type"] == f"message.{m['status']}" and e["account"] == "voice" and e["kind"] == "notify"
    # every request signed, at most 500 events, every event id once (a healthy receiver gets no repeats)
    mine = [r for r in receiver.received if any(e["job_id"] == job_id for e in r.events)]
    assert mine and all(r.verified and r.answered == 204 for r in mine)
    assert max(len(r.events) for r in mine) <= 500
    ids = [e["id"] for r in mine for e in r.events]
    assert len(ids) == len(set(ids)) and set(ids) == db_event_ids(job_id)
    # seq increases along each message's life: submitted (or unknown) first, its final status last
    lives: dict[str, list[dict]] = defaultdict(list)
    for e in receiver.events():
        if e["job_id"] == job_id and e["type"].startswith("message."):
            lives[e["custom_id"]].append(e)
    for custom_id, life in lives.items():
        life.sort(key=lambda e: e["seq"])
        assert len({e["seq"] for e in life}) == len(life)
        assert life[0]["status"] in ("submitted", "unknown", "rejected") and life[-1]["status"] == final[custom_id]["status"]
    done = next(e for e in receiver.events() if e["type"] == "job.done" and e["job_id"] == job_id)
    assert nonzero(done["counts"]) == nonzero(view["counts"]) and done["status"] == "done"


def test_receiver_down_then_up_gets_everything_without_loss(api, sim, receiver):
    # given a receiver that is down
    receiver.stop()
    job_id = submit(api, receiver, 60, "172")
    wait_until(lambda: any(d["status"] == "failing" and d["attempts"] >= 2 for d in deliveries(api, receiver)),
               timeout_s=30, what="a failing delivery tried twice")
    failing = [d for d in deliveries(api, receiver) if d["status"] == "failing"]
    assert all(d["last_error"].startswith("connection failed") for d in failing)
    # when it comes back
    receiver.start()
    wait_done(job_id)
    # then every event of the job arrives, none twice within a request, nothing lost
    wait_until(lambda: received_ids(receiver, job_id) == db_event_ids(job_id), timeout_s=30,
               what=lambda: f"{len(received_ids(receiver, job_id))} of {len(db_event_ids(job_id))} events")
    for r in receiver.received:
        assert len({e["id"] for e in r.events}) == len(r.events)
    assert {d["id"] for d in failing} <= {d["id"] for d in deliveries(api, receiver, "delivered")}


@pytest.mark.parametrize(("mode", "error"), [("error", "HTTP 500"), ("hang", "timeout")])
def test_500s_and_timeouts_are_retried_with_growing_delays(api, sim, receiver, mode, error):
    # given a receiver that fails every request
    receiver.mode, receiver.hang_s = mode, 1.5
    job_id = submit(api, receiver, 3, "173" if mode == "error" else "174")
    wait_until(lambda: bool(receiver.received), timeout_s=30, what="a first request")
    first = receiver.received[0].headers["X-Msgrelay-Delivery"]
    wait_until(lambda: len(attempts_of(receiver, first)) >= 3, timeout_s=30, what="three tries of one delivery")
    # when it recovers (well within the horizon, 20 s here: a dead delivery waits for an operator, another test)
    receiver.mode = "ok"
    (tried,) = [d for d in deliveries(api, receiver) if str(d["id"]) == first]
    assert tried["status"] != "dead", tried
    assert tried["last_error"].startswith(error) and tried["attempts"] >= 2

    def left() -> str:
        states = sorted((d["id"], d["status"], d["attempts"]) for d in deliveries(api, receiver))
        return (f"everything delivered; deliveries {states}, events received "
                f"{len(received_ids(receiver, job_id))} of {len(db_event_ids(job_id))}")
    wait_until(lambda: received_ids(receiver, job_id) and not [
        d for d in deliveries(api, receiver) if d["status"] != "delivered"] and wait_done(job_id) and
        received_ids(receiver, job_id) == db_event_ids(job_id), timeout_s=60, what=left)
    # then the waits grew: each at least the schedule's least (base 0.4 s · 2^(n-1), cap 3.2, jitter ≥ ½), so the
    # third at least 0.8 s, twice the longest the first may be. (The gaps are not compared with each other: each
    # also holds up to a dispatch tick, 0.5 s here, which on a slow machine outweighs the first waits.)
    times = attempts_of(receiver, first)[:4]
    assert len(times) == 4, times  # three refused, then the one acknowledged
    gaps = [b - a for a, b in zip(times, times[1:])]
    least = [0.5 * min(3.2, 0.4 * 2 ** n) for n in range(3)]
    assert all(g >= low - 0.05 for g, low in zip(gaps, least)), gaps


def test_after_the_horizon_a_delivery_is_dead_and_retry_sends_it_again(api, sim, receiver):
    # given a receiver answering 500 for longer than the horizon (20 s in the tests)
    receiver.mode = "error"
    job_id = submit(api, receiver, 2, "175")
    wait_until(lambda: bool(deliveries(api, receiver, "dead")), timeout_s=60, what="a dead delivery")
    dead = deliveries(api, receiver, "dead")[0]
    assert dead["attempts"] >= 4 and dead["last_error"].startswith("HTTP 500")
    tries = len(attempts_of(receiver, str(dead["id"])))
    time.sleep(1.5)
    assert len(attempts_of(receiver, str(dead["id"]))) == tries  # dead is dead: no more tries by itself
    refused_ids = {e["id"] for r in receiver.received if r.headers["X-Msgrelay-Delivery"] == str(dead["id"])
                   for e in r.events}
    # when it is well again and an operator retries every dead delivery
    receiver.mode = "ok"
    wait_done(job_id)
    wait_until(lambda: not deliveries(api, receiver, "failing") and not deliveries(api, receiver, "sending")
               and not deliveries(api, receiver, "pending"), timeout_s=40, what="no delivery left failing")
    for d in deliveries(api, receiver, "dead"):
        answer = api.post(f"/v1/webhooks/deliveries/{d['id']}/retry")
        assert answer.status_code == 200 and answer.json()["status"] == "pending", answer.text
    # then it is sent again: the same events, same ids, and everything has arrived
    wait_until(lambda: received_ids(receiver, job_id) == db_event_ids(job_id), timeout_s=30,
               what="every event after the retry")
    assert refused_ids <= received_ids(receiver, job_id)
    # the receiver has the events a moment before the worker records its answer: wait for that
    wait_until(lambda: any(d["id"] == dead["id"] for d in deliveries(api, receiver, "delivered")), timeout_s=30,
               what="the retried delivery recorded as delivered")
    again = api.post(f"/v1/webhooks/deliveries/{dead['id']}/retry")
    assert again.status_code == 422 and "status" in again.text and "delivered" in again.text


@pytest.mark.parametrize(("path", "status", "names"), [
    ("/v1/webhooks/deliveries/2147483000/retry", 404, "no webhook delivery"),
    ("/v1/webhooks/deliveries/abc/retry", 422, "delivery_id"),
    ("/v1/webhooks/deliveries/0/retry", 422, "delivery_id"),
    ("/v1/webhooks/deliveries?status=lost", 422, "status"),
    ("/v1/webhooks/deliveries?limit=0", 422, "limit"),
])
def test_bad_operator_input_is_a_4xx_naming_the_field(api, database, path, status, names):
    answer = api.post(path) if path.endswith("/retry") else api.get(path)
    assert answer.status_code == status and names in answer.text, answer.text


@pytest.mark.parametrize(("callback_url", "rule"), [
    ("ftp://x.example/h", "http:// or https://"), ("not a url", "spaces"), ("mailto:a@b.example", "http:// or https://"), (42, "string")])
def test_a_bad_callback_url_is_a_422_naming_it_with_nothing_written(api, callback_url, rule):
    answer = api.post("/v1/jobs", json={"account": "voice", "kind": "notify", "content": CONTENT,
                                        "recipients": ["13800000000"], "callback_url": callback_url})
    assert answer.status_code == 422 and "callback_url" in answer.text and rule in answer.text, answer.text


def test_a_worker_killed_while_delivering_sends_the_batch_again_with_the_same_ids(api, sim, receiver, worker):
    # given a receiver that holds requests longer than msgrelay waits
    receiver.mode, receiver.hang_s = "hang", 3
    job_id = submit(api, receiver, 20, "176")
    # when the worker is SIGKILLed while the receiver holds its first request
    wait_until(lambda: bool(receiver.received), timeout_s=30, what="a request held by the receiver")
    worker.kill()
    held, seen = receiver.received[0], 1
    receiver.mode = "ok"
    worker.start()
    # then that delivery is sent again (same delivery, same event ids) and nothing is lost
    wait_until(lambda: job_view(job_id)["status"] == "done" and received_ids(receiver, job_id) == db_event_ids(job_id),
               timeout_s=90, what="every event after the kill")
    again = [r for r in receiver.received[seen:]
             if r.headers["X-Msgrelay-Delivery"] == held.headers["X-Msgrelay-Delivery"] and r.answered == 204]
    assert again and [e["id"] for e in again[0].events] == [e["id"] for e in held.events]


def test_a_receiver_with_the_wrong_secret_rejects_until_it_has_the_right_one(api, sim, receiver):
    # given a receiver holding a secret msgrelay does not sign with
    receiver.secrets = ["not-ours"]
    job_id = submit(api, receiver, 3, "177")
    wait_until(lambda: any(d["last_status"] == 401 for d in deliveries(api, receiver)), timeout_s=30,
               what="a delivery refused with 401")
    assert receiver.events() == [] and all(not r.verified for r in receiver.received)
    # when it learns the previous secret (msgrelay still signs with it: one v1 per secret)
    receiver.secrets = ["whsec-test-previous"]
    # then everything arrives
    wait_done(job_id)
    wait_until(lambda: received_ids(receiver, job_id) == db_event_ids(job_id), timeout_s=30, what="every event")


def test_a_job_paused_for_balance_tells_paused_with_the_reason_then_resumed_and_done(api, sim, receiver):
    # given an empty balance
    sim.post("balance", {"app_id": "EUCP-EMY-TEST-VOICE", "balance": 0})
    job_id = submit(api, receiver, 20, "178")
    wait_until(lambda: job_view(job_id)["status"] == "paused", what="job paused")
    reason = job_view(job_id)["reason"]
    wait_until(lambda: any(e["type"] == "job.paused" for e in receiver.events() if e["job_id"] == job_id),
               timeout_s=20, what="job.paused")
    paused = next(e for e in receiver.events() if e["type"] == "job.paused" and e["job_id"] == job_id)
    assert paused["reason"] == reason and reason.startswith("balance") and paused["status"] == "paused"
    assert paused["counts"]["queued"] == 20
    # when topped up and resumed
    sim.post("balance", {"app_id": "EUCP-EMY-TEST-VOICE", "balance": 1_000_000})
    assert api.post(f"/v1/jobs/{job_id}/resume").status_code == 200
    view = wait_done(job_id)
    # then
    wait_until(lambda: any(e["type"] == "job.done" for e in receiver.events() if e["job_id"] == job_id),
               timeout_s=20, what="job.done")
    types = [e["type"] for e in sorted(receiver.events(), key=lambda e: int(e["id"][4:])) if e["job_id"] == job_id
             and e["type"].startswith("job.")]
    assert types == ["job.paused", "job.resumed", "job.done"]
    done = next(e for e in receiver.events() if e["type"] == "job.done" and e["job_id"] == job_id)
    assert nonzero(done["counts"]) == nonzero(view["counts"]) and sum(done["counts"].values()) == 20


def test_a_hanging_receiver_does_not_hold_back_another(api, sim, receiver):
    # given one receiver that holds every request past msgrelay's timeout, and a healthy one
    slow = Receiver(receiver.secrets).start()
    slow.mode, slow.hang_s = "hang", 3
    try:
        slow_job = submit(api, slow, 30, "179")
        fast_job = submit(api, receiver, 30, "170")
        # when both jobs finish
        wait_done(fast_job)
        wait_done(slow_job)
        # then the healthy receiver has everything while the slow one still has nothing acknowledged
        wait_until(lambda: received_ids(receiver, fast_job) == db_event_ids(fast_job), timeout_s=20,
                   what="the healthy receiver's events")
        assert slow.received and not [r for r in slow.received if r.answered == 204]
        wait_until(lambda: any((d["last_error"] or "").startswith("timeout") for d in deliveries(api, slow)),
                   timeout_s=10, what="a timed-out delivery to the slow receiver")
    finally:
        slow.stop()


def test_a_token_in_the_callback_url_is_used_but_never_shown(api, sim, receiver):
    # given a producer whose receiver URL carries its token in the query
    secret_url = receiver.url + "?token=tok-s3cret-1&v=2"
    answer = api.post("/v1/jobs", json={"account": "voice", "kind": "notify", "content": CONTENT,
                                        "recipients": mobiles("178", 2), "callback_url": secret_url})
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    # when its events are delivered (to the URL as given: the receiver answers any path and query)
    wait_until(lambda: bool(received_ids(receiver, job_id)), timeout_s=60, what="the job's first events")
    # then the deliveries list shows the receiver with its query values hidden, and the token nowhere
    listed = api.get("/v1/webhooks/deliveries", params={"limit": 1000})
    assert listed.status_code == 200 and "tok-s3cret-1" not in listed.text
    assert any(d["receiver_url"] == receiver.url + "?token=***&v=***" for d in listed.json())
