"""The sending policy end to end: the API, the real worker (two processes) and beat, the simulator over HTTP.
A send window's clock is set through the account's time zone in the accounts file, which running processes
read again when it changes; nothing sleeps for hours."""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import accounts_toml, job_view, mobiles, wait_done, wait_until, zone_at

pytestmark = pytest.mark.e2e


def accepted(sim, endpoint: str, app_id: str) -> Counter:
    """How many times the simulator accepted each mobile at `endpoint` for one credential."""
    return Counter(r["mobile"] for req in sim.get("requests", endpoint=endpoint) if req["app_id"] == app_id
                   for r in req["recipients"])


def post_job(api, account: str, kind: str, people: list[str], content: str = "您好", **extra) -> int:
    answer = api.post("/v1/jobs", json={"account": account, "kind": kind, "content": content, "recipients": people,
                                        **extra})
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def test_a_marketing_job_waits_for_its_window_while_a_verification_call_goes_at_once(api, sim):
    path = Path(os.environ["MSGRELAY_ACCOUNTS_FILE"])
    shut = path.read_text(encoding="utf-8")  # the session's file: the window is shut (03:00 in its zone)
    people = mobiles("177", 30)
    # when: a marketing job and a verification call are submitted outside the window
    held = post_job(api, "windowed", "marketing", people, content="周末特惠")
    code = post_job(api, "windowed", "vfcode", people[:1], content="1234")
    # then: the call reaches the provider, the marketing job sends nothing and says what it waits for
    wait_done(code)
    view = job_view(held)
    assert (view["status"], view["waiting"]) == ("running", "send window opens 09:00"), view
    assert not accepted(sim, "/voice/sendCTCode", "EUCP-EMY-TEST-WINDOW")
    assert api.get(f"/v1/jobs/{held}").json()["waiting"] == "send window opens 09:00"
    try:
        # when: the clock reaches 10:00 in the account's zone (the file changes; every process reads it again)
        path.write_text(accounts_toml(sim.url, window_zone=zone_at(10)), encoding="utf-8")
        # then: the sweeper releases the job by itself and every recipient is sent once
        view = wait_done(held)
    finally:
        path.write_text(shut, encoding="utf-8")
    assert view["waiting"] is None and view["counts"]["delivered"] + view["counts"]["failed"] == 30
    assert accepted(sim, "/voice/sendCTCode", "EUCP-EMY-TEST-WINDOW") == Counter({m: 1 for m in people})


def test_concurrent_jobs_on_two_worker_processes_never_pass_the_cap(api, sim, worker):
    shared = "17900000001"
    jobs = [[shared, *mobiles(f"17{i + 1}", 25)] for i in range(6)]  # three chunks each (max_batch 10)
    with ThreadPoolExecutor(len(jobs)) as pool:
        ids = list(pool.map(lambda people: post_job(api, "capped", "notify", people), jobs))
    for job_id in ids:
        wait_done(job_id)
    # then: `3/day` let exactly three through; the other three were rejected for the cap, unsent
    assert accepted(sim, "/voice/send", "EUCP-EMY-TEST-CAPPED")[shared] == 3
    states = Counter(m["provider_state"] for job_id in ids
                     for m in api.get(f"/v1/jobs/{job_id}/messages", params={"limit": 100}).json()
                     if m["mobile"] == shared)
    assert states["FREQUENCY_CAP"] == 3
    held = [api.get(f"/v1/jobs/{job_id}/messages", params={"provider_state": "FREQUENCY_CAP"}).json()
            for job_id in ids]
    assert sum(len(h) for h in held) == 3 and all(m["status"] == "rejected" for h in held for m in h)
    assert sum(job_view(job_id)["held_back"]["FREQUENCY_CAP"] for job_id in ids) == 3


OPT_OUTS = ("TD", "td", "ＴＤ", "退订")


def suppressed(api, mobile: str, scope: str) -> bool:
    return bool(api.get("/v1/suppressions", params={"mobile": mobile, "scope": scope}).json())


def test_opt_out_replies_polled_from_qyxs_suppress_their_mobiles_but_not_a_verification_call(api, sim):
    opted = mobiles("178", len(OPT_OUTS))
    other = "17899999999"
    # when: each number replies one form of "unsubscribe" (the worker polls 企业信使's replies every second)
    for mobile, text in zip(opted, OPT_OUTS):
        sim.post("reply", {"app_id": "15", "mobile": mobile, "content": text})
    sim.post("reply", {"app_id": "15", "mobile": other, "content": "TD 谢谢"})  # not an opt-out: kept as a reply
    wait_until(lambda: all(suppressed(api, m, "smsoptout") for m in opted), what="the replies suppressed")
    # then: a later marketing SMS to all of them reaches only the one who did not opt out
    job = post_job(api, "smsoptout", "sms", [*opted, other], content="【测试】周末特惠，回T退订")
    view = wait_done(job)
    assert accepted(sim, "/sms.aspx", "15") == Counter({other: 1})
    assert view["held_back"]["SUPPRESSED"] == len(opted) and view["counts"]["rejected"] == len(opted)
    held = api.get(f"/v1/jobs/{job}/messages", params={"provider_state": "SUPPRESSED"}).json()
    assert sorted(m["mobile"] for m in held) == opted and {m["status"] for m in held} == {"rejected"}
    assert not suppressed(api, other, "smsoptout")
    # and a verification call to an opted-out number still goes, even when every account suppresses it
    assert api.post("/v1/suppressions", json={"mobile": opted[0], "reason": "complaint"}).status_code == 201
    code = post_job(api, "voice", "vfcode", [opted[0]], content="4321")
    wait_done(code)
    assert accepted(sim, "/voice/sendVFCode", "EUCP-EMY-TEST-VOICE")[opted[0]] == 1
    assert api.delete(f"/v1/suppressions/{opted[0]}").status_code == 204


def test_an_opt_out_reply_pushed_by_ihuyi_suppresses_the_mobile_for_mms(api, sim, live_api):
    from tests.e2e.conftest import MMS_CALLBACK_TOKEN
    base = f"{live_api}/callbacks/ihuyi/mms/{MMS_CALLBACK_TOKEN}"
    sim.post("ihuyi/push", {"api_id": "2RYN7CQHL1M", "receipt_url": f"{base}/receipt", "mo_url": f"{base}/mo",
                            "template_url": f"{base}/template", "mo_rate": 0.0})
    opted, other = "17600000001", "17600000002"
    sim.post("reply", {"app_id": "2RYN7CQHL1M", "mobile": opted, "content": " 退订 "})
    wait_until(lambda: suppressed(api, opted, "mms"), what="the pushed reply suppressed")
    job = post_job(api, "mms", "mms", [opted, other], content="会员日全场八折",
                   options={"title": "会员日", "sign_name": "【测试】"})
    wait_done(job)
    assert accepted(sim, "/mms/v1/batchSend", "2RYN7CQHL1M") == Counter({other: 1})
    assert [m["mobile"] for m in api.get(f"/v1/jobs/{job}/messages", params={"provider_state": "SUPPRESSED"}).json()
            ] == [opted]


@pytest.mark.parametrize(("body", "field"), [
    ({"mobile": "12"}, "mobile"), ({"mobile": "13800138000", "scope": "nobody"}, "scope"),
    ({"mobile": "13800138000", "reason": "x" * 256}, "reason"), ({}, "mobile"),
    ({"mobile": "13800138000", "colour": "red"}, "colour"),
])
def test_a_bad_suppression_is_a_422_naming_the_field(api, body, field):
    answer = api.post("/v1/suppressions", json=body)
    assert answer.status_code == 422, answer.text
    assert field in answer.text


def test_a_bad_valid_until_is_a_422_naming_it_and_writes_nothing(api):
    for value in ("2026-12-05T08:00:00", "2020-01-01T00:00:00Z", "not a time"):
        answer = api.post("/v1/jobs", json={"account": "voice", "kind": "notify", "content": "您好",
                                            "recipients": ["13800138000"], "valid_until": value,
                                            "idempotency_key": f"valid-until-{value}"})
        assert answer.status_code == 422 and "valid_until" in answer.text, answer.text


def test_a_job_paused_past_its_valid_until_sends_nothing_when_resumed(api, sim):
    from datetime import datetime, timedelta, timezone
    people = mobiles("175", 12)
    until = datetime.now(timezone.utc) + timedelta(seconds=3)
    # given: a marketing job held by its shut window, then paused by the operator
    job = post_job(api, "windowed", "marketing", people, content="限时特惠", valid_until=until.isoformat())
    assert api.post(f"/v1/jobs/{job}/pause").json()["status"] == "paused"
    # when: valid_until passes while it is paused (the sweeper expires what is unsent), then it is resumed
    wait_until(lambda: job_view(job)["counts"]["expired"] == len(people), what="the unsent messages expired")
    assert api.post(f"/v1/jobs/{job}/resume").status_code == 200
    # then: nothing reached the provider, every message is expired NOT_SENT_IN_TIME, the job is done
    view = wait_done(job)
    assert view["held_back"]["NOT_SENT_IN_TIME"] == len(people) and view["valid_until"]
    states = {(m["status"], m["provider_state"]) for m in api.get(f"/v1/jobs/{job}/messages").json()}
    assert states == {("expired", "NOT_SENT_IN_TIME")}
    assert not accepted(sim, "/voice/sendCTCode", "EUCP-EMY-TEST-WINDOW")
