"""ihuyi MMS end to end: the real API (uvicorn, so the simulator can push to it) → Redis → Celery worker →
simulator over HTTP → receipts, replies and template audits pushed back → SQL."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections import Counter

import pytest
import requests
from sqlalchemy import func, select

from msgrelay.cli.frames import sample_frames, sample_png
from tests.e2e.conftest import (
    CALLBACK_TOKEN, MMS_API_KEY, MMS_CALLBACK_TOKEN, job_view, mobiles, wait_done, wait_until,
)
from tests.api_helpers import reports_kept

pytestmark = pytest.mark.e2e
API_ID = "2RYN7CQHL1M"
OPTIONS = {"title": "周末特惠", "sign_name": "【互亿无线】"}
RECEIPT_STATES = {"DELIVERED": "delivered"}  # every other receipt code is a failure


@pytest.fixture
def api_url(live_api: str) -> str:
    """The API as its own process (session-wide), so the simulator can push to it."""
    return live_api


def push_urls(api_url: str, token: str = MMS_CALLBACK_TOKEN) -> dict[str, str]:
    base = f"{api_url}/callbacks/ihuyi/mms/{token}"
    return {"receipt_url": f"{base}/receipt", "mo_url": f"{base}/mo", "template_url": f"{base}/template"}


@pytest.fixture
def mms(sim, api_url) -> str:
    """The simulator (reset) pushing this api_id's receipts, replies and audits to the API."""
    sim.post("ihuyi/push", {"api_id": API_ID, **push_urls(api_url), "mo_rate": 0.0})
    return api_url


def submit(api_url: str, people: list[str], **body) -> int:
    answer = requests.post(f"{api_url}/v1/jobs", json={"account": "mms", "kind": "mms", "recipients": people,
                                                       **body}, timeout=60)
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def sent_phones(sim) -> Counter:
    return Counter(r["mobile"] for req in sim.get("requests", endpoint="/mms/v1/batchSend") for r in req["recipients"])


def expected_counts(sim) -> dict[str, int]:
    """Message counts the simulator's own outcomes imply (receipts are keyed by provider id)."""
    return dict(Counter(RECEIPT_STATES.get(state, "failed") for state in sim.get("outcomes")["by_custom_id"].values()))


def chunks_of(job_id: int) -> list:
    from models import Chunk, session_scope
    with session_scope() as session:
        return list(session.scalars(select(Chunk).where(Chunk.job_id == job_id).order_by(Chunk.lo)))


def message_states(job_id: int) -> dict[int, tuple]:
    from models import Message, session_scope
    with session_scope() as session:
        return {m.id: (m.status, m.updated_at) for m in session.scalars(select(Message).where(Message.job_id == job_id))}


def count_rows(table) -> int:
    from models import session_scope
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(table))


def test_25000_recipients_go_in_3_signed_requests_and_pushed_receipts_settle_them(mms, sim):
    # given
    people = mobiles("135", 25_000)
    started = time.monotonic()
    # when
    job_id = submit(mms, people, content=sample_frames(), options=OPTIONS)
    submitted = time.monotonic() - started
    view = wait_done(job_id, timeout_s=60)
    done = time.monotonic() - started
    # then three requests, each signed, each with its own request_id, kept on its chunk
    log = sim.get("ihuyi/requests")
    assert len(log) == 3 and not any(e["duplicate"] for e in log)
    for e in log:
        text = f"api_id={API_ID}&api_key={MMS_API_KEY}&request_id={e['request_id']}&timestamp={e['timestamp']}"
        assert e["signature"] == hashlib.md5(text.encode()).hexdigest()
    assert len({e["request_id"] for e in log}) == 3
    chunks = chunks_of(job_id)
    assert {c.request_id for c in chunks} == {e["request_id"] for e in log}
    assert {c.provider_task_id for c in chunks} == {e["task_id"] for e in log}
    assert sorted(e["phones"] for e in log) == [5_000, 10_000, 10_000]
    # and everyone was sent once, and the receipts decided every message
    phones = sent_phones(sim)
    assert set(phones) == set(people) and set(phones.values()) == {1}
    stats = sim.get("stats")
    assert stats["duplicates"] == 0 and stats["refused"] == {}
    assert {k: v for k, v in view["counts"].items() if v} == expected_counts(sim)
    assert view["counts"]["delivered"] > 20_000
    print(f"\n25,000 MMS recipients: submitted in {submitted:.1f}s, done in {done:.1f}s")


def test_a_stall_after_accept_is_retried_with_the_same_request_id_and_sends_no_phone_twice(mms, sim):
    # given the provider accepts, then answers after the client's read timeout (2 s in tests)
    sim.post("faults", {"stall_after_accept_rate": 1.0, "stall_s": 3})
    people = mobiles("136", 30)
    # when
    job_id = submit(mms, people, content="您的账单已出，请查收", options=OPTIONS)
    view = wait_done(job_id, timeout_s=30)
    # then the chunk was tried twice with one request_id; the repeat was answered, not sent
    log = sim.get("ihuyi/requests")
    assert [e["duplicate"] for e in log] == [False, True]
    assert log[0]["request_id"] == log[1]["request_id"] == chunks_of(job_id)[0].request_id
    assert chunks_of(job_id)[0].attempts == 2 and chunks_of(job_id)[0].provider_task_id == log[0]["task_id"]
    assert set(sent_phones(sim).values()) == {1} and len(sent_phones(sim)) == 30
    # and receipts pushed before the retry learnt the task_id were matched once it did
    assert {k: v for k, v in view["counts"].items() if v} == expected_counts(sim)
    from models import Message, RawReport, session_scope
    with session_scope() as session:
        first_receipt = session.scalar(select(func.min(RawReport.received_at)).join(
            Message, Message.id == RawReport.message_id).where(Message.job_id == job_id))
        recorded = session.scalar(select(func.min(Message.submitted_at)).where(Message.job_id == job_id))
    assert first_receipt < recorded  # they came early, and waited


def test_a_reset_after_accept_is_retried_with_the_same_request_id_and_sends_no_phone_twice(mms, sim):
    # given ihuyi records each batchSend and then, at 50%, resets the connection instead of answering; the
    # simulator draws each endpoint's faults from its own generator, and with seed 0 batchSend's first two
    # requests are reset and its third answered
    sim.post("faults", {"reset_after_accept_rate": 0.5, "seed": 0})
    people = mobiles("133", 30)
    # when
    job_id = submit(mms, people, content="您的账单已出，请查收", options=OPTIONS)
    view = wait_done(job_id, timeout_s=30)
    # then the first try was recorded and dropped, and its two retries carried the same request_id: ihuyi
    # answered them with the first try's task_id instead of sending again
    [chunk] = chunks_of(job_id)
    log = sim.get("ihuyi/requests")
    assert [e["duplicate"] for e in log] == [False, True, True] and chunk.attempts == 3
    assert {e["request_id"] for e in log} == {chunk.request_id}
    assert {e["task_id"] for e in log} == {chunk.provider_task_id}
    [record] = sim.get("requests", endpoint="/mms/v1/batchSend")
    assert record["faults"] == ["reset_after_accept"]
    assert sim.get("stats")["faults"]["reset_after_accept"] == {"/mms/v1/batchSend": 2}
    # and each phone was accepted once, and its receipt decided its message
    assert set(sent_phones(sim).values()) == {1} and len(sent_phones(sim)) == 30
    assert {k: v for k, v in view["counts"].items() if v} == expected_counts(sim)


def test_receipts_pushed_twice_change_each_message_once(mms, sim):
    # given every push delivered twice (ihuyi repeats when it missed our `success`)
    sim.post("ihuyi/push", {"api_id": API_ID, **push_urls(mms), "repeat": 2})
    raw_before = reports_kept()
    # when
    job_id = submit(mms, mobiles("137", 50), content="会员日", options=OPTIONS)
    view = wait_done(job_id, timeout_s=30)
    wait_until(lambda: sim.get("ihuyi/stats").get("receipt_repeated", 0) >= 1, what="the repeated push")
    wait_until(lambda: reports_kept() - raw_before == 100, what="both copies of the 50 receipts stored")
    # then
    before = message_states(job_id)
    first = requests.get(f"{mms}/v1/jobs/{job_id}/messages", params={"limit": 1}).json()[0]
    receipt = {"task_id": first["provider_msg_id"].split(":")[0], "phone": first["mobile"], "code": "UNDELIV",
               "message": "late contradiction", "send_time": "2026-01-01 00:00:00",
               "report_time": "2026-01-01 00:00:09"}
    again = requests.post(push_urls(mms)["receipt_url"], json=[receipt], timeout=10)
    assert again.status_code == 200 and again.text == "success"
    assert message_states(job_id) == before and job_view(job_id)["counts"] == view["counts"]


@pytest.mark.parametrize("path", ["receipt", "mo", "template"])
def test_a_wrong_token_is_404_and_nothing_is_stored(mms, path):
    from models import InboundMessage, RawReport, ReportPage, Template
    before = [count_rows(t) for t in (ReportPage, RawReport, InboundMessage, Template)]
    bodies = {"receipt": [{"task_id": "T", "phone": "13800000000", "code": "DELIVERED"}],
              "mo": [{"task_id": "T", "phone": "13800000000", "content": "hi"}],
              "template": {"template_id": 1, "code": "SUCCESS", "message": "ok"}}
    for url in (f"{mms}/callbacks/ihuyi/mms/wrong-token/{path}", f"{mms}/callbacks/ihuyi/nobody/{MMS_CALLBACK_TOKEN}/{path}",
                f"{mms}/callbacks/ihuyi/voice/{CALLBACK_TOKEN}/{path}"):  # an Emay account's own token
        answer = requests.post(url, json=bodies[path], timeout=10)
        assert answer.status_code == 404 and MMS_CALLBACK_TOKEN not in answer.text
    bad = requests.post(push_urls(mms)[f"{path}_url"], data=b"\xff not json", timeout=10)
    assert bad.status_code == 400 and bad.text != "success"
    assert [count_rows(t) for t in (ReportPage, RawReport, InboundMessage, Template)] == before


PNG = {"con_type": "image", "ext_type": "png", "data": __import__("base64").b64encode(sample_png()).decode()}
TEXT = {"con_type": "text", "ext_type": "txt", "data": "你好"}


@pytest.mark.parametrize("content, options, field, words", [
    ([[TEXT, PNG, dict(PNG)]], OPTIONS, "content[0]", "at most one text and one media"),
    ([[TEXT, {**PNG, "ext_type": "exe"}]], OPTIONS, "content[0][1].ext_type", "jpg, jpeg, png, gif"),
    ([[{**TEXT, "data": "字" * 110_000}]], OPTIONS, "content", "at most 300 KB"),
    ([[TEXT, PNG]], {"title": "周末特惠"}, "options.sign_name", "is required when no template_id"),
])
def test_invalid_frames_are_422_naming_the_rule_and_nothing_is_sent(mms, sim, content, options, field, words):
    from models import Job
    jobs_before = count_rows(Job)
    answer = requests.post(f"{mms}/v1/jobs", json={"account": "mms", "kind": "mms", "content": content,
                                                   "options": options, "recipients": ["13800000000"]}, timeout=10)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["field"] == field and words in detail["msg"]
    assert count_rows(Job) == jobs_before and sim.get("requests") == []


def template_status(api_url: str, template_id: str) -> str:
    rows = requests.get(f"{api_url}/v1/templates", params={"account": "mms"}, timeout=10).json()
    return next(r["status"] for r in rows if r["template_id"] == template_id)


def test_template_lifecycle_create_audit_push_then_send_by_template(mms, sim):
    # given a template created through the API
    made = requests.post(f"{mms}/v1/accounts/mms/templates", timeout=10, json={
        "title": "双十一", "content": sample_frames(), "sign_name": "【互亿无线】", "purpose": "会员营销"})
    assert made.status_code == 201, made.text
    template = made.json()
    assert template["status"] == "pending" and template["content"][0][1] == {
        "con_type": "image", "ext_type": "png", "bytes": len(sample_png())}
    # when ihuyi's audit is pushed
    wait_until(lambda: template_status(mms, template["template_id"]) == "approved", timeout_s=15, what="approval")
    listed = requests.get(f"{mms}/v1/templates", params={"status": "approved"}, timeout=10).json()
    assert any(r["template_id"] == template["template_id"] and r["message"] == "审核通过" for r in listed)
    # then a job by template sends the template id and no content
    job_id = submit(mms, mobiles("138", 20), options={"template_id": int(template["template_id"])})
    view = wait_done(job_id, timeout_s=30)
    assert sum(view["counts"][s] for s in ("delivered", "failed")) == 20
    assert len(sent_phones(sim)) == 20 and sim.get("stats")["refused"] == {}


def test_a_job_by_a_rejected_template_is_refused_at_submit(mms, sim):
    from models import Job
    made = requests.post(f"{mms}/v1/accounts/mms/templates", timeout=10, json={
        "title": "REJECT this one", "content": "纯文字模板", "sign_name": "【互亿无线】"}).json()
    wait_until(lambda: template_status(mms, made["template_id"]) == "rejected", timeout_s=15, what="rejection")
    jobs_before = count_rows(Job)
    answer = requests.post(f"{mms}/v1/jobs", json={"account": "mms", "kind": "mms", "recipients": ["13800000000"],
                                                   "options": {"template_id": made["template_id"]}}, timeout=10)
    assert answer.status_code == 422
    detail = answer.json()["detail"][0]
    assert detail["field"] == "options.template_id" and "rejected" in detail["msg"] and "模板内容不符合规范" in detail["msg"]
    assert count_rows(Job) == jobs_before and sim.get("requests") == []
    bad = requests.post(f"{mms}/v1/accounts/mms/templates", timeout=10,
                        json={"title": "t", "content": [[TEXT, PNG, dict(PNG)]], "sign_name": "【互亿无线】"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "content[0]"


def test_replies_are_stored_once_in_the_shared_inbound_table(mms, sim):
    from models import InboundMessage, session_scope
    sim.post("ihuyi/push", {"api_id": API_ID, **push_urls(mms), "mo_rate": 1.0, "repeat": 2})
    job_id = submit(mms, mobiles("139", 20), content="回复1参加活动", options=OPTIONS)
    view = wait_done(job_id, timeout_s=30)
    wait_until(lambda: sim.get("ihuyi/stats").get("mo_repeated", 0) >= 1, what="the replies pushed twice")
    with session_scope() as session:
        rows = list(session.scalars(select(InboundMessage).where(InboundMessage.account == "mms",
                                                                 InboundMessage.mobile.like("139%"))))
    assert len(rows) == view["counts"]["delivered"] and len({r.mobile for r in rows}) == len(rows)
    assert all(r.provider == "ihuyi_mms" and r.task_id and r.dest_code for r in rows)
    listed = requests.get(f"{mms}/v1/inbound", params={"account": "mms"}, timeout=10).json()
    assert {r["mobile"] for r in listed} >= {r.mobile for r in rows}


def test_balance_polled_by_the_beat_task_is_one_snapshot_per_product(mms, sim):
    from models import BalanceSnapshot, session_scope
    from tasks import poll_all_balances
    sim.post("ihuyi/product", {"api_id": API_ID, "product_id": 1020, "product_name": "营销彩信-商超类"})
    poll_all_balances.apply_async(queue="poll")  # what beat runs every MSGRELAY_POLL_BALANCES_EVERY_S

    def products() -> set[str]:
        with session_scope() as session:
            return set(session.scalars(select(BalanceSnapshot.product).where(BalanceSnapshot.account == "mms")))

    wait_until(lambda: {"1001 彩信通知", "1020 营销彩信-商超类"} <= products(), timeout_s=20, what="two snapshots")
    shown = {r["product"] for r in requests.get(f"{mms}/v1/balances", timeout=10).json() if r["account"] == "mms"}
    assert {"1001 彩信通知", "1020 营销彩信-商超类"} <= shown


def msgrelay(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "msgrelay.cli", *args], env={**os.environ, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=60)


def test_cli_send_with_frames_and_template_commands(mms, sim, tmp_path):
    image = tmp_path / "poster.png"
    image.write_bytes(sample_png())
    (tmp_path / "virus.exe").write_bytes(b"MZ\x90\x00" * 8)
    out = msgrelay("send", "mms", "mms", "--to", ",".join(mobiles("133", 12)), "--frame", "text=新品上市",
                   "--frame", f"image={image}", "--frame", "text=回复TD退订", "--option", "title=新品",
                   "--option", "sign_name=【互亿无线】", "--wait")
    assert out.returncode == 0, out.stderr
    assert "12 recipients in 1 chunks" in out.stdout and "done" in out.stdout
    [request] = sim.get("ihuyi/requests")
    assert request["phones"] == 12
    bad = msgrelay("send", "mms", "mms", "--to", "13300000099", "--frame", f"image={tmp_path / 'virus.exe'}",
                   "--option", "title=t", "--option", "sign_name=【互亿无线】")
    assert bad.returncode == 2 and "content[0][0].ext_type" in bad.stderr
    made = msgrelay("template", "create", "mms", "--title", "CLI模板", "--frame", "text=你好", "--frame",
                    f"image={image}", "--sign-name", "【互亿无线】")
    assert made.returncode == 0, made.stderr
    template_id = made.stdout.split("template ")[1].split(" ")[0]
    # pending, or already approved: the simulator's audit push may reach the API before the CLI reads the row back
    assert f"template {template_id} on mms: pending" in made.stdout or "approved" in made.stdout, made.stdout
    wait_until(lambda: template_status(mms, template_id) == "approved", timeout_s=15, what="approval")
    listing = msgrelay("templates", "--account", "mms")
    assert listing.returncode == 0 and template_id in listing.stdout and "approved" in listing.stdout
