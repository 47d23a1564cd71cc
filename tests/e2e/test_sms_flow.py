"""企业信使 SMS end to end: API/CLI → worker → simulator → reports and replies polled → SQL."""
from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from providers.simulator.qyxs import replies_of
from providers.simulator.state import RequestRecord
from tests.e2e.conftest import job_view, mobiles, nonzero, wait_done, wait_until

pytestmark = pytest.mark.e2e
SMS_STATES = {"10": "delivered", "20": "failed"}


def sent_to(sim, userid: str) -> list[dict]:
    """The send requests the simulator accepted for one userid (the simulator is reset before each test)."""
    return [r for r in sim.get("requests", endpoint="/sms.aspx") if r["app_id"] == userid]


def expected_counts(sim, userid: str) -> dict[str, int]:
    """What the simulator decided for every recipient it accepted for `userid` (keyed by its provider ids)."""
    by_id = sim.get("outcomes")["by_custom_id"]
    return dict(Counter(SMS_STATES[by_id[r["provider_id"]]] for req in sent_to(sim, userid)
                        for r in req["recipients"]))


def submit(api, account: str, people: list[str], **extra) -> int:
    answer = api.post("/v1/jobs", json={"account": account, "kind": "sms", "content": "【测试】您的订单已发货",
                                        "recipients": people, **extra})
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def test_2500_recipients_are_three_requests_and_reports_match(api, sim):
    # given
    people = mobiles("135", 2500)
    # when
    job_id = submit(api, "sms", people)
    view = wait_done(job_id)
    # then
    sent = sent_to(sim, "12")
    assert len(sent) == 3 and max(len(r["recipients"]) for r in sent) <= 1000
    assert sorted(r["mobile"] for req in sent for r in req["recipients"]) == people
    assert sim.get("stats")["duplicates"] == 0
    assert nonzero(view["counts"]) == expected_counts(sim, "12")
    delivered = api.get(f"/v1/jobs/{job_id}/messages", params={"status": "delivered", "limit": 1}).json()[0]
    task, mobile = delivered["provider_msg_id"].split(":")
    assert mobile == delivered["mobile"] and task.isdigit() and delivered["provider_state"] == "10"


def test_account_max_batch_of_200_makes_13_requests(api, sim):
    job_id = submit(api, "sms200", mobiles("136", 2500))
    view = wait_done(job_id)
    sent = sent_to(sim, "13")
    assert len(sent) == 13 and max(len(r["recipients"]) for r in sent) == 200
    assert nonzero(view["counts"]) == expected_counts(sim, "13")


def test_injected_5xx_still_accepts_every_recipient_once(api, sim):
    # given 40% of requests answered 503
    sim.post("faults", {"error_5xx_rate": 0.4, "seed": 11})
    # when
    job_id = submit(api, "sms200", mobiles("137", 2000))
    wait_done(job_id)
    # then
    accepted = Counter(r["mobile"] for req in sent_to(sim, "13") for r in req["recipients"])
    assert len(accepted) == 2000 and set(accepted.values()) == {1}
    stats = sim.get("stats")
    assert stats["duplicates"] == 0 and stats["http_5xx"] > 0


def test_password_error_pauses_and_resume_after_fixing_finishes(api, sim):
    # given the platform no longer accepts our password
    sim.post("secret", {"app_id": "12", "secret_key": "other"})
    job_id = submit(api, "sms", mobiles("138", 30))
    wait_until(lambda: job_view(job_id)["status"] == "paused", what="job paused")
    assert job_view(job_id)["reason"].startswith("credentials")
    assert sent_to(sim, "12") == []
    # when the password agrees again and the operator resumes
    sim.post("reset")
    assert api.post(f"/v1/jobs/{job_id}/resume").json()["status"] == "running"
    # then
    view = wait_done(job_id)
    assert sum(len(r["recipients"]) for r in sent_to(sim, "12")) == 30
    assert nonzero(view["counts"]) == expected_counts(sim, "12")


def test_replies_are_stored_and_listed(api, sim):
    # given a job whose delivered recipients partly reply
    people = mobiles("139", 1000)
    wait_done(submit(api, "sms", people))
    by_id = sim.get("outcomes")["by_custom_id"]
    expected = set()
    for req in sent_to(sim, "12"):
        record = RequestRecord(req["id"], "/sms.aspx", "12", "qyxs", [r["mobile"] for r in req["recipients"]], None,
                               [by_id[r["provider_id"]] for r in req["recipients"]], 0, 0, req["at"], 0.0, "")
        expected |= {(reply["mobile"], reply["content"]) for reply in replies_of(record, 0)}
    assert expected
    # when the inbound poll has run, then every reply is listed once
    def listed() -> list[dict]:
        return [m for m in api.get("/v1/inbound", params={"account": "sms", "limit": 1000}).json()
                if m["mobile"] in set(people)]
    wait_until(lambda: len(listed()) >= len(expected), timeout_s=20, what="replies stored")
    assert {(m["mobile"], m["content"]) for m in listed()} == expected and len(listed()) == len(expected)
    assert all(m["provider"] == "qyxs_sms" and m["task_id"] and m["received_at"] for m in listed())


def test_scheduled_job_is_sent_at_once_with_its_send_time(api, sim):
    send_at = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    job_id = submit(api, "sms", mobiles("150", 5), send_at=send_at)
    assert job_view(job_id)["status"] == "running"  # the platform holds it, not our database
    wait_until(lambda: len(sent_to(sim, "12")) == 1, what="the scheduled send handed to the platform")


def test_check_content_through_the_api(api, sim):
    hit = api.post("/v1/accounts/sms/check-content", json={"content": "代开发票，请联系"})
    assert hit.status_code == 200 and hit.json() == {"account": "sms", "ok": False, "message": "包含非法字符：代开发票"}
    clean = api.post("/v1/accounts/sms/check-content", json={"content": "您的订单已发货"}).json()
    assert clean["ok"] is True and clean["message"] == "未包含非法字符"
    unknown = api.post("/v1/accounts/nobody/check-content", json={"content": "x"})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["field"] == "account"
    not_sms = api.post("/v1/accounts/ims/check-content", json={"content": "x"})
    assert not_sms.status_code == 422 and not_sms.json()["detail"][0]["field"] == "account"


def test_check_content_through_the_cli(sim):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "msgrelay.cli", "check-content", *args], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    hit, clean, unknown = cli("sms", "买六合彩"), cli("sms", "您好"), cli("nobody", "您好")
    assert hit.returncode == 1 and "包含非法字符：六合彩" in hit.stdout
    assert clean.returncode == 0 and "未包含非法字符" in clean.stdout
    assert unknown.returncode == 2 and "account:" in unknown.stderr
    assert "checked-pass-1" not in hit.stdout + hit.stderr + unknown.stderr


def test_account_with_check_content_refuses_a_keyword_hit_before_accepting(api, sim):
    refused = api.post("/v1/jobs", json={"account": "smscheck", "kind": "sms", "content": "赌博网站开业",
                                         "recipients": mobiles("151", 3)})
    assert refused.status_code == 422
    detail = refused.json()["detail"][0]
    assert detail["field"] == "content" and "包含非法字符：赌博" in detail["msg"]
    assert sim.get("requests") == []
    wait_done(submit(api, "smscheck", mobiles("151", 3)))
    assert len(sim.get("requests")) == 1


@pytest.mark.parametrize(("recipients", "field"), [
    (["13500000001", "1350000000"], "recipients[1].mobile"),
    (["13500000001", "+61412000001"], "recipients[1].mobile"),
    (["13500000001", {"mobile": "13500000001", "custom_id": "own-id-1"}], "recipients[1].mobile"),  # listed twice
])
def test_bad_input_is_422_naming_the_field_and_nothing_is_sent(api, sim, recipients, field):
    answer = api.post("/v1/jobs", json={"account": "sms", "kind": "sms", "content": "hi", "recipients": recipients})
    assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == field
    assert sim.get("requests") == []
