"""Emay international SMS end to end: API → Redis → Celery worker → simulator → reports → SQL."""
from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.conftest import job_uid, nonzero, wait_done

pytestmark = pytest.mark.e2e
IMS_STATES = {"DELIVRD": "delivered", "TIMEOUT": "expired"}  # FAIL_* → failed


def au_mobiles(n: int, block: int = 412) -> list[str]:
    """Valid Australian mobiles written the way people do: +61 4xx xxx xxx."""
    return [f"+61 {block} {i // 1000:03d} {i % 1000:03d}" for i in range(n)]


def emay_form(mobile: str) -> str:
    return "00" + mobile.replace("+", "").replace(" ", "")


def expected_counts(sim, uid: str) -> dict[str, int]:
    by_custom = sim.get("outcomes")["by_custom_id"]
    return dict(Counter(IMS_STATES.get(state, "failed") for cid, state in by_custom.items() if cid.startswith(uid)))


def test_700_same_content_recipients_are_three_batch_requests_and_reports_match(api, sim):
    # given
    people = au_mobiles(700)
    # when
    answer = api.post("/v1/jobs", json={"account": "ims", "kind": "ims", "content": "Your parcel has arrived",
                                        "recipients": people})
    # then
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    view = wait_done(job_id)
    uid = job_uid(job_id)
    sent = sim.requests_for(uid)
    assert len(sent) == 3 and {r["endpoint"] for r in sent} == {"/inter/sendBatchIMS"}
    assert max(len(r["recipients"]) for r in sent) <= 300
    assert sorted(r["mobile"] for req in sent for r in req["recipients"]) == sorted(map(emay_form, people))
    assert sim.get("stats")["duplicates"] == 0
    assert nonzero(view["counts"]) == expected_counts(sim, uid)
    assert view["counts"]["delivered"] > 500


def test_ten_personalised_recipients_go_to_personality_with_their_reports(api, sim):
    # given one content per recipient
    people = [{"mobile": m, "content": f"Hello #{i}, your code is {1000 + i}"} for i, m in enumerate(au_mobiles(10))]
    # when
    job_id = api.post("/v1/jobs", json={"account": "ims", "kind": "ims", "recipients": people}).json()["id"]
    view = wait_done(job_id)
    # then
    uid = job_uid(job_id)
    sent = sim.requests_for(uid)
    assert [r["endpoint"] for r in sent] == ["/inter/sendPersonalityIMS"] and len(sent[0]["recipients"]) == 10
    assert nonzero(view["counts"]) == expected_counts(sim, uid)
    messages = api.get(f"/v1/jobs/{job_id}/messages").json()
    assert messages[3]["content"] == "Hello #3, your code is 1003" and messages[3]["provider_state"]


def test_one_recipient_is_a_single_send_on_the_otp_queue(api, sim):
    # given a number written as 61… with the country named by the job
    answer = api.post("/v1/jobs", json={"account": "ims", "kind": "ims", "content": "Code 4321",
                                        "recipients": ["61412000777"], "options": {"country": "AU"}})
    job_id = answer.json()["id"]
    wait_done(job_id)
    # then
    sent = sim.requests_for(job_uid(job_id))
    assert [r["endpoint"] for r in sent] == ["/inter/sendSingleIMS"]
    assert sent[0]["recipients"][0]["mobile"] == "0061412000777"
    from providers.registry import get_provider
    assert get_provider("emay_ims").queue_for("ims", 1) == "otp"


def test_injected_5xx_still_accepts_every_recipient_once(api, sim):
    # given 30% of requests answered 503
    sim.post("faults", {"error_5xx_rate": 0.3, "seed": 3})
    # when
    job_id = api.post("/v1/jobs", json={"account": "ims", "kind": "ims", "content": "Sale",
                                        "recipients": au_mobiles(1500, block=413)}).json()["id"]
    wait_done(job_id)
    # then
    accepted = Counter(sim.recipients(job_uid(job_id)))
    assert len(accepted) == 1500 and set(accepted.values()) == {1}
    stats = sim.get("stats")
    assert stats["duplicates"] == 0 and stats["http_5xx"] > 0


@pytest.mark.parametrize(("recipients", "options", "field", "says"), [
    (["+61412000001", "+86 138 0013 8000"], None, "recipients[1].mobile", "domestic"),
    (["+61412000001", "+61 41"], None, "recipients[1].mobile", "valid"),
    (["61412000001"], None, "recipients[0].mobile", "options.country"),
    ([{"mobile": "+61412000001", "custom_id": "x" * 33}], None, "recipients[0].custom_id", "32"),
    (["+61412000001"], {"country": "Atlantis"}, "options.country", "ISO"),
])
def test_bad_input_is_422_naming_the_field_and_nothing_is_sent(api, sim, recipients, options, field, says):
    body = {"account": "ims", "kind": "ims", "content": "hi", "recipients": recipients}
    if options:
        body["options"] = options
    answer = api.post("/v1/jobs", json=body)
    assert answer.status_code == 422
    detail = answer.json()["detail"][0]
    assert detail["field"] == field and says in detail["msg"]
    assert sim.get("requests") == []
