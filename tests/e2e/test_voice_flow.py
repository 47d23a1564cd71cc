"""Emay voice and voice-SMS end to end: API → Redis → Celery worker → simulator over HTTP → reports → SQL."""
from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.e2e.conftest import chunk_rows, job_uid, job_view, message_rows, mobiles, wait_done, wait_until

pytestmark = pytest.mark.e2e
VOICE_STATES = {"SUCCESS": "delivered", "TIMEOUT": "expired"}


def chunk_attempts(job_id: int) -> int:
    from sqlalchemy import func, select

    from models import Chunk, session_scope
    with session_scope() as session:
        return session.scalar(select(func.sum(Chunk.attempts)).where(Chunk.job_id == job_id))


def expected_counts(sim, uid: str, states: dict[str, str], fail_default: str = "failed") -> Counter:
    by_custom = sim.get("outcomes")["by_custom_id"]
    return Counter(states.get(state.strip(), fail_default) for cid, state in by_custom.items() if cid.startswith(uid))


def settled_by_reports(sim, job_id: int) -> None:
    """Every message of the job says what the provider's report for it says: the status its state maps to,
    and the state itself (a message closed by expiry, or never reported, has none)."""
    outcomes = {cid: state.strip() for cid, state in sim.get("outcomes")["by_custom_id"].items()}
    got = [(m["custom_id"], m["status"], m["provider_state"]) for m in message_rows(job_id)]
    assert got == [(cid, VOICE_STATES.get(outcomes[cid], "failed"), outcomes[cid]) for cid, _, _ in got]


def test_notify_job_of_1234_recipients_is_three_requests_and_reports_match(api, sim):
    # given
    people = mobiles("139", 1234)
    # when
    answer = api.post("/v1/jobs", json={"account": "voice", "kind": "notify", "content": "您的快递已到", "recipients": people})
    # then
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    assert answer.json()["chunks"] == 3
    view = wait_done(job_id)
    uid = job_uid(job_id)
    sent = sim.requests_for(uid)
    assert len(sent) == 3 and all(r["endpoint"] == "/voice/send" for r in sent)
    assert max(len(r["recipients"]) for r in sent) <= 500
    assert sorted(r["mobile"] for req in sent for r in req["recipients"]) == sorted(people)
    stats = sim.get("stats")
    assert stats["duplicates"] == 0 and "ERROR_SIGN" not in stats["refused"]
    expected = expected_counts(sim, uid, VOICE_STATES)
    got = {k: v for k, v in view["counts"].items() if v}
    assert got == dict(expected)
    assert view["counts"]["delivered"] > 900


def test_voice_sms_job_with_trigger_options(api, sim):
    # given
    body = {"account": "voicesms", "kind": "voice_sms", "content": "账单提醒", "recipients": mobiles("186", 700),
            "options": {"smsContent": "详情见App", "triggerConditions": "4", "connectTime": "10"}}
    # when
    job_id = api.post("/v1/jobs", json=body).json()["id"]
    view = wait_done(job_id)
    # then
    uid = job_uid(job_id)
    assert [len(r["recipients"]) for r in sim.requests_for(uid)] in ([500, 200], [200, 500])
    expected = expected_counts(sim, uid, {"4": "delivered", "3": "expired", "2": "failed"}, "unknown")
    assert {k: v for k, v in view["counts"].items() if v} == dict(expected)


def test_vfcode_goes_one_call_per_recipient(api, sim):
    job_id = api.post("/v1/jobs", json={"account": "voice", "kind": "vfcode", "content": "123456",
                                        "recipients": ["13700000001", "13700000002"]}).json()["id"]
    wait_done(job_id)
    sent = sim.requests_for(job_uid(job_id))
    assert len(sent) == 2 and {r["endpoint"] for r in sent} == {"/voice/sendVFCode"}


def test_faults_5xx_and_over_speed_still_send_everyone_exactly_once(api, sim):
    # given 20% 5xx and 10% ERROR_OVER_SPEED on every request; the simulator draws each endpoint's faults from
    # its own generator, and with seed 6 the send endpoint's 3rd request is over speed and its 5th a 503
    # (this job makes at least 6), so the faults hit the sends whatever the report polls drew meanwhile
    sim.post("faults", {"error_5xx_rate": 0.2, "over_speed_rate": 0.1, "seed": 6})
    people = mobiles("137", 3000)
    # when
    job_id = api.post("/v1/jobs", json={"account": "voice", "kind": "marketing", "content": "会员日",
                                        "recipients": people}).json()["id"]
    wait_done(job_id, timeout_s=120)
    # then
    uid = job_uid(job_id)
    accepted = Counter(sim.recipients(uid))
    assert len(accepted) == 3000 and set(accepted.values()) == {1}
    stats = sim.get("stats")
    assert stats["duplicates"] == 0
    # the faults did hit the sends themselves (not only report polls)
    assert stats["faults"]["error_5xx"]["/voice/sendCTCode"] > 0
    assert stats["faults"]["over_speed"]["/voice/sendCTCode"] > 0


def test_bad_number_refused_by_provider_is_isolated(api, sim):
    # given the provider refuses one number the regex accepts
    people = mobiles("150", 40)
    sim.post("faults", {"bad_mobiles": [people[17]]})
    # when
    job_id = api.post("/v1/jobs", json={"account": "voice", "kind": "notify", "content": "通知", "recipients": people}).json()["id"]
    view = wait_done(job_id)
    # then only that one is rejected, everyone else sent once
    assert view["counts"]["rejected"] == 1
    bad = api.get(f"/v1/jobs/{job_id}/messages", params={"status": "rejected"}).json()
    assert [m["mobile"] for m in bad] == [people[17]] and bad[0]["provider_state"] == "ERROR_MOBILE_ERROR"
    accepted = Counter(sim.recipients(job_uid(job_id)))
    assert len(accepted) == 39 and set(accepted.values()) == {1}


def test_stall_after_accept_is_unknown_then_settled_by_reports(api, sim, live_api):
    # given an account whose reports only ever come by push, and a provider that records each request but
    # answers it after the worker's 2 s read timeout
    from msgrelay.accounts import get_accounts
    sim.post("faults", {"stall_after_accept_rate": 1.0, "stall_s": 60})
    # when a job is sent
    job_id = api.post("/v1/jobs", json={"account": "pushed", "kind": "notify", "content": "通知",
                                        "recipients": mobiles("151", 30)}).json()["id"]
    # then the send is ambiguous: the chunk and every message are `unknown` (no report can have come yet)
    wait_until(lambda: job_view(job_id)["counts"]["unknown"] == 30, what="every message unknown")
    [chunk] = chunk_rows(job_id)
    assert (chunk["status"], chunk["error_code"]) == ("unknown", "READ_TIMEOUT")
    [request] = sim.requests_for(job_uid(job_id))
    assert request["faults"] == ["stall_after_accept"] and len(request["recipients"]) == 30
    # when the stall ends and the provider's reports arrive (pushed to the running API)
    sim.post("faults", {})
    token = get_accounts()["pushed"].callback_token.get_secret_value()
    sim.post("push", {"app_id": "EUCP-EMY-TEST-PUSH", "url": f"{live_api}/callbacks/emay/pushed/{token}"})
    view = wait_done(job_id)
    # then nobody was sent twice, and each message ends as its report says
    accepted = Counter(sim.recipients(job_uid(job_id)))
    assert len(accepted) == 30 and set(accepted.values()) == {1}
    assert {k for k, v in view["counts"].items() if v} <= {"delivered", "failed", "expired"}
    settled_by_reports(sim, job_id)
    assert chunk_rows(job_id)[0]["status"] == "unknown"  # never resent


def test_reset_after_accept_is_unknown_never_resent_and_settled_by_reports(api, sim):
    # given a provider that records each request, then resets the connection instead of answering
    sim.post("faults", {"reset_after_accept_rate": 1.0})
    # when a job is sent
    job_id = api.post("/v1/jobs", json={"account": "voice", "kind": "notify", "content": "通知",
                                        "recipients": mobiles("158", 30)}).json()["id"]
    # then the dropped answer is ambiguous, not "not sent": the chunk is unknown and is not tried again
    wait_until(lambda: chunk_rows(job_id)[0]["status"] not in ("pending", "sending"), what="the send decided")
    [chunk] = chunk_rows(job_id)
    assert (chunk["status"], chunk["error_code"], chunk["attempts"]) == ("unknown", "CONNECTION_LOST", 1)
    sim.post("faults", {})
    wait_done(job_id)
    # and the provider's records show the request once, dropped after acceptance; its reports settled everyone
    [request] = sim.requests_for(job_uid(job_id))
    assert request["faults"] == ["reset_after_accept"] and len(request["recipients"]) == 30
    assert sim.get("stats")["faults"]["reset_after_accept"] == {"/voice/send": 1}
    settled_by_reports(sim, job_id)


def test_balance_error_pauses_and_resume_finishes(api, sim):
    # given an empty balance
    sim.post("balance", {"app_id": "EUCP-EMY-TEST-VOICE", "balance": 0})
    job_id = api.post("/v1/jobs", json={"account": "voice", "kind": "notify", "content": "通知",
                                        "recipients": mobiles("152", 20)}).json()["id"]
    wait_until(lambda: job_view(job_id)["status"] == "paused", what="job paused")
    assert job_view(job_id)["reason"].startswith("balance")
    assert sim.recipients(job_uid(job_id)) == []
    # when the account is topped up and the job resumed
    sim.post("balance", {"app_id": "EUCP-EMY-TEST-VOICE", "balance": 1_000_000})
    assert api.post(f"/v1/jobs/{job_id}/resume").status_code == 200
    # then
    wait_done(job_id)
    assert len(sim.recipients(job_uid(job_id))) == 20


def test_rate_limit_and_max_batch_of_account(api, sim):
    job_id = api.post("/v1/jobs", json={"account": "limited", "kind": "notify", "content": "通知",
                                        "recipients": mobiles("153", 1000)}).json()["id"]
    wait_done(job_id)
    sent = sim.requests_for(job_uid(job_id))
    assert len(sent) == 10 and max(len(r["recipients"]) for r in sent) == 100


def test_idempotency_key_returns_the_first_job(api, sim):
    body = {"account": "voice", "kind": "vfcode", "content": "4321", "recipients": ["13800000001"],
            "idempotency_key": "login-42"}
    first, second = api.post("/v1/jobs", json=body).json(), api.post("/v1/jobs", json=body).json()
    assert first["id"] == second["id"] and second["created"] is False
    wait_done(first["id"])
    assert len(sim.recipients(job_uid(first["id"]))) == 1


def test_pause_and_cancel_from_the_api(api, sim):
    sim.post("faults", {"latency_s": 0.3})
    job_id = api.post("/v1/jobs", json={"account": "limited", "kind": "notify", "content": "通知",
                                        "recipients": mobiles("154", 3000)}).json()["id"]
    assert api.post(f"/v1/jobs/{job_id}/pause").json()["status"] == "paused"
    cancelled = api.post(f"/v1/jobs/{job_id}/cancel").json()
    assert cancelled["status"] == "cancelled"
    wait_until(lambda: job_view(job_id)["counts"]["queued"] == 0, what="no message left queued")
    sent = len(sim.recipients(job_uid(job_id)))
    assert job_view(job_id)["counts"]["rejected"] == 3000 - sent


def test_credential_error_pauses_and_resume_after_fixing_finishes(api, sim):
    # given the provider no longer accepts our secret (rotated on its side)
    sim.post("secret", {"app_id": "EUCP-EMY-TEST-VOICE", "secret_key": "rotated-elsewhere"})
    job_id = api.post("/v1/jobs", json={"account": "voice", "kind": "notify", "content": "通知",
                                        "recipients": mobiles("155", 30)}).json()["id"]
    wait_until(lambda: job_view(job_id)["status"] == "paused", what="job paused")
    assert job_view(job_id)["reason"] == "credentials: ERROR_SIGN"
    assert chunk_attempts(job_id) == 1  # paused at the first refusal: no hammering with a bad signature
    # when the secrets agree again and the operator resumes
    sim.post("reset")
    assert api.post(f"/v1/jobs/{job_id}/resume").json()["status"] == "running"
    # then
    wait_done(job_id)
    assert len(sim.recipients(job_uid(job_id))) == 30


def test_messages_without_any_report_expire(api, sim):
    # given an account whose reports are neither polled nor pushed
    job_id = api.post("/v1/jobs", json={"account": "pushed", "kind": "notify", "content": "通知",
                                        "recipients": mobiles("156", 5)}).json()["id"]
    # when the expiry window (20 s in tests) passes
    view = wait_done(job_id, timeout_s=60)
    # then
    assert view["counts"]["expired"] == 5


def test_scheduled_job_waits_in_the_database_until_due(api, sim):
    from datetime import datetime, timedelta, timezone
    due = datetime.now(timezone.utc) + timedelta(seconds=5)
    job_id = api.post("/v1/jobs", json={"account": "voice", "kind": "notify", "content": "通知",
                                        "send_at": due.isoformat(), "recipients": mobiles("157", 10)}).json()["id"]
    # every look taken before it is due finds it queued in the database and unsent (a look is judged by the
    # clock after it, so however slowly this runs, a look that ends before the due time saw the job waiting)
    looks = 0
    while True:
        status, sent = job_view(job_id)["status"], sim.recipients(job_uid(job_id))
        if datetime.now(timezone.utc) >= due:
            break
        assert (status, sent) == ("queued", [])
        looks += 1
        time.sleep(0.25)
    assert looks, "the job was due before the test could look at it"
    # and once due it is sent: never before its time
    wait_done(job_id)
    first = min(r["at"] for r in sim.requests_for(job_uid(job_id)))
    assert first >= due.timestamp() - 0.5


def test_known_low_balance_pauses_before_anything_is_sent(api, sim):
    # given an account that costs 1 unit a recipient, whose last known balance is 100
    from msgrelay.accounts import get_accounts
    from msgrelay.balances import poll_balance
    from msgrelay.settings import get_settings
    metered = get_accounts()["metered"]
    sim.post("balance", {"app_id": "EUCP-EMY-TEST-METER", "balance": 100})
    poll_balance(metered, get_settings())
    # when a 500-recipient job is submitted
    job_id = api.post("/v1/jobs", json={"account": "metered", "kind": "notify", "content": "通知",
                                        "recipients": mobiles("159", 500)}).json()["id"]
    # then it pauses with the reason, and the provider saw nothing
    wait_until(lambda: job_view(job_id)["status"] == "paused", what="job paused")
    assert job_view(job_id)["reason"].startswith("balance: last known balance 100")
    assert sim.recipients(job_uid(job_id)) == []
    # and after a top-up seen by the next balance poll, resume finishes it
    sim.post("balance", {"app_id": "EUCP-EMY-TEST-METER", "balance": 10_000})
    poll_balance(metered, get_settings())
    api.post(f"/v1/jobs/{job_id}/resume")
    wait_done(job_id)
    assert len(sim.recipients(job_uid(job_id))) == 500


def test_rate_limit_holds_across_worker_processes(api, sim):
    # given an account allowed 4 requests a second (a burst of at most one second's worth), 2 worker processes
    # when 600 recipients go out 50 at a time
    job_id = api.post("/v1/jobs", json={"account": "throttled", "kind": "notify", "content": "通知",
                                        "recipients": mobiles("160", 600)}).json()["id"]
    wait_done(job_id)
    # then the 12 requests never beat the bucket: in any window of t seconds at most 4 + 4·t of them
    times = sorted(r["at"] for r in sim.requests_for(job_uid(job_id)))
    assert len(times) == 12
    for i, start in enumerate(times):
        for j in range(i + 1, len(times)):
            assert j - i + 1 <= 4 + 4 * (times[j] - start) + 1, "more requests than the bucket allows"
    assert times[-1] - times[0] >= (12 - 4) / 4 * 0.8
