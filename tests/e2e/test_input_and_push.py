"""Bad input is refused before anything is written or sent; pushed reports, plain and encrypted."""
from __future__ import annotations

import gzip
import json

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.e2e.conftest import CALLBACK_TOKEN, SECRET_VOICE, job_uid, job_view, wait_done

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api():
    from api.app import app
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def count_jobs() -> int:
    from models import Job, session_scope
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Job))


@pytest.mark.parametrize("body, field", [
    ({"account": "voice", "kind": "notify", "content": "hi", "recipients": ["13800000000", "1380000000x"]},
     "recipients[1].mobile"),
    ({"account": "voice", "kind": "vfcode", "content": "12345", "recipients": ["13800000000"]}, "content"),
    ({"account": "voice", "kind": "notify", "content": "字" * 201, "recipients": ["13800000000"]}, "content"),
    ({"account": "nobody", "kind": "notify", "content": "hi", "recipients": ["13800000000"]}, "account"),
    ({"account": "voice", "kind": "fax", "content": "hi", "recipients": ["13800000000"]}, "kind"),
    ({"account": "voice", "kind": "notify", "content": "hi", "recipients": ["13800000000"],
      "options": {"colour": "red"}}, "options.colour"),
    ({"account": "voicesms", "kind": "voice_sms", "content": "hi", "recipients": ["13800000000"],
      "options": {"triggerConditions": "3"}}, "options.keyContent"),
    ({"account": "voicesms", "kind": "voice_sms", "content": "hi", "recipients": ["13800000000"],
      "options": {"triggerConditions": "4", "connectTime": "61"}}, "options.connectTime"),
])
def test_bad_input_is_422_naming_the_field_and_nothing_is_sent(api, sim, body, field):
    # given
    jobs_before = count_jobs()
    # when
    answer = api.post("/v1/jobs", json=body)
    # then
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["field"] == field and detail["msg"]
    assert count_jobs() == jobs_before
    assert sim.get("requests") == []


def test_missing_recipients_is_422_from_schema(api, sim):
    answer = api.post("/v1/jobs", json={"account": "voice", "kind": "notify", "content": "hi", "recipients": []})
    assert answer.status_code == 422 and "recipients" in answer.text


def encrypt(secret: str, payload: dict) -> bytes:
    """What Emay sends: JSON → gzip → AES/ECB/PKCS5Padding with the raw secret key."""
    padder = padding.PKCS7(128).padder()
    data = padder.update(gzip.compress(json.dumps(payload).encode())) + padder.finalize()
    enc = Cipher(algorithms.AES(secret.encode()), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def test_encrypted_push_is_decoded_and_applied(api, sim):
    # given a submitted notify job of an account whose reports are pushed, not polled
    from msgrelay.accounts import get_accounts
    token = get_accounts()["pushed"].callback_token.get_secret_value()
    # a push built here the way Emay builds one, with states chosen by the test
    job_id = api.post("/v1/jobs", json={"account": "pushed", "kind": "notify", "content": "通知",
                                        "recipients": ["13900000001", "13900000002"]}).json()["id"]
    from tests.e2e.conftest import wait_until
    wait_until(lambda: job_view(job_id)["counts"]["submitted"] == 2, what="submitted")
    msgs = api.get(f"/v1/jobs/{job_id}/messages").json()
    payload = {"code": "SUCCESS", "data": [
        {"appId": "EUCP-EMY-TEST-PUSH", "voiceId": m["provider_msg_id"], "customVoiceId": m["custom_id"],
         "state": " SUCCESS " if i == 0 else "FAIL_CALL", "message": "成功", "callingTime": "2026-11-23 12:00:00",
         "callingDuration": 12.5, "mobile": m["mobile"]} for i, m in enumerate(msgs)]}
    # when
    answer = api.post(f"/callbacks/emay/pushed/{token}", content=encrypt("abcdef0123456789", payload),
                      headers={"appId": "EUCP-EMY-TEST-PUSH", "Content-Type": "application/octet-stream"})
    # then
    assert answer.status_code == 200 and answer.text == "success"
    view = wait_done(job_id)
    assert view["counts"]["delivered"] == 1 and view["counts"]["failed"] == 1
    # and the same push again changes nothing
    again = api.post(f"/callbacks/emay/pushed/{token}", content=encrypt("abcdef0123456789", payload),
                     headers={"appId": "EUCP-EMY-TEST-PUSH"})
    assert again.text == "success" and job_view(job_id)["counts"] == view["counts"]


def test_plain_push_to_the_voice_account(api, sim):
    job_id = api.post("/v1/jobs", json={"account": "voice", "kind": "vfcode", "content": "2468",
                                        "recipients": ["13900000003"]}).json()["id"]
    wait_done(job_id)  # polled already; a late duplicate push must not change it
    before = job_view(job_id)["counts"]
    m = api.get(f"/v1/jobs/{job_id}/messages").json()[0]
    body = {"code": "SUCCESS", "data": [{"appId": "EUCP-EMY-TEST-VOICE", "voiceId": m["provider_msg_id"],
                                         "customVoiceId": m["custom_id"], "state": "SUCCESS", "mobile": m["mobile"]}]}
    answer = api.post(f"/callbacks/emay/voice/{CALLBACK_TOKEN}", json=body, headers={"appId": "EUCP-EMY-TEST-VOICE"})
    assert answer.text == "success" and job_view(job_id)["counts"] == before


@pytest.mark.parametrize("path, headers, body, status", [
    ("/callbacks/emay/voice/wrong-token", {"appId": "EUCP-EMY-TEST-VOICE"}, b'{"code":"SUCCESS","data":[]}', 404),
    ("/callbacks/emay/voicesms/anything", {"appId": "EUCP-EMY-TEST-JOIN"}, b'{"code":"SUCCESS","data":[]}', 404),
    (f"/callbacks/emay/voice/{CALLBACK_TOKEN}", {"appId": "EUCP-EMY-TEST-VOICE"}, b"\x00garbage\xff" * 5, 400),
    (f"/callbacks/emay/voice/{CALLBACK_TOKEN}", {"appId": "SOMEONE-ELSE"}, b'{"code":"SUCCESS","data":[]}', 400),
])
def test_bad_pushes_are_refused_without_a_500(api, path, headers, body, status):
    from tests.api_helpers import stored_rows
    before = stored_rows()
    answer = api.post(path, content=body, headers=headers)
    assert answer.status_code == status
    assert CALLBACK_TOKEN not in answer.text and SECRET_VOICE not in answer.text
    assert stored_rows() == before


def test_unknown_job_is_404(api):
    assert api.get("/v1/jobs/999999").status_code == 404


@pytest.mark.parametrize("encrypted", [False, True])
def test_simulator_pushes_reports_to_the_running_api(live_api, api, sim, encrypted):
    # given the provider pushes this account's reports to our callback URL
    from msgrelay.accounts import get_accounts
    token = get_accounts()["pushed"].callback_token.get_secret_value()
    sim.post("push", {"app_id": "EUCP-EMY-TEST-PUSH", "url": f"{live_api}/callbacks/emay/pushed/{token}",
                      "encrypted": encrypted})
    # when a job is sent
    job_id = api.post("/v1/jobs", json={"account": "pushed", "kind": "notify", "content": "通知",
                                        "recipients": [f"1890000{i:04d}" for i in range(40)]}).json()["id"]
    # then every report arrives by push (this account is never polled) and matches the simulator's outcomes
    view = wait_done(job_id, timeout_s=30)
    uid = job_uid(job_id)
    outcomes = {c: s.strip() for c, s in sim.get("outcomes")["by_custom_id"].items() if c.startswith(uid)}
    expected = {"delivered": 0, "failed": 0, "expired": 0}
    for state in outcomes.values():
        expected["delivered" if state == "SUCCESS" else "expired" if state == "TIMEOUT" else "failed"] += 1
    assert {k: view["counts"][k] for k in expected} == expected
    assert sim.get("stats")["pushes"]["delivered_reports"] == 40
