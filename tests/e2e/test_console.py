"""The console at /ui through FastAPI's TestClient (the real database, Redis and worker; the browser tests are
in test_console_browser.py): login and sessions, CSRF, what each role sees and may do, and that every refusal
leaves nothing changed."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from tests.api_helpers import count_rows, environment
from tests.e2e.conftest import job_view, mobiles, wait_done, wait_until
from tests.e2e.console_keys import TOKENS, keyed_accounts_file

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def app_env(stack) -> Iterator[None]:
    path = keyed_accounts_file()
    with environment(MSGRELAY_ACCOUNTS_FILE=str(path), MSGRELAY_API_TOKEN=None):
        yield


@pytest.fixture
def client(app_env) -> Iterator[TestClient]:
    """A browser-like client of a fresh app: cookies kept, redirects not followed."""
    from api.app import create_app
    with TestClient(create_app(), raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def log_in(client: TestClient, key: str) -> str:
    """Log in as `key`; returns the session's CSRF token (read from the page, as a browser's form has it)."""
    answer = client.post("/ui/login", data={"token": TOKENS[key], "next": "/ui/jobs"})
    assert answer.status_code == 303, answer.text
    page = client.get("/ui/jobs")
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def queued_job(client_or_none=None, account: str = "voice", n: int = 3) -> int:
    """A job sent an hour from now (queued: nothing moves it meanwhile), submitted through the API's function."""
    from msgrelay.accounts import get_accounts
    from msgrelay.submit import submit_job
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    return submit_job(accounts=get_accounts(), account=account, kind="notify" if account == "voice" else "sms",
                      recipients=mobiles("139", n), content="您的快递已到" if account == "voice" else "验证码 1234",
                      send_at=later, enqueue=lambda _c, call=None: None).id


def audit_rows() -> list[dict]:
    from models import session_scope
    from msgrelay.audit import list_audit
    with session_scope() as session:
        return list_audit(session, limit=5)


def test_pages_need_a_login(client):
    for path in ("/ui", "/ui/jobs", "/ui/accounts", "/ui/jobs/1", "/ui/audit"):
        answer = client.get(path)
        assert answer.status_code == 303
    assert client.get("/ui/jobs?status=done").headers["location"] == "/ui/login?next=/ui/jobs?status=done"
    assert client.get("/ui/live/jobs?ids=1").status_code == 401


@pytest.mark.parametrize("token, status", [("", 422), ("wrong-token", 401), (TOKENS["viewer"], 303)])
def test_login(client, token, status):
    answer = client.post("/ui/login", data={"token": token})
    assert answer.status_code == status
    assert ("msgrelay_console" in answer.cookies) == (status == 303)


def test_the_session_cookie_is_guarded_and_holds_no_token(client):
    answer = client.post("/ui/login", data={"token": TOKENS["ops"]})
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert TOKENS["ops"] not in cookie
    from msgrelay.limits import get_redis
    stored = b"".join(get_redis().get(k) for k in get_redis().keys("msgrelay:ui:session:*"))
    assert TOKENS["ops"].encode() not in stored and answer.cookies["msgrelay_console"].encode() not in stored


@pytest.mark.parametrize("target, lands", [("/ui/accounts", "/ui/accounts"), ("//evil.example/ui", "/ui/jobs"),
                                           ("https://evil.example/", "/ui/jobs"), ("/v1/jobs", "/ui/jobs")])
def test_login_goes_back_only_to_the_console(client, target, lands):
    answer = client.post("/ui/login", data={"token": TOKENS["viewer"], "next": target})
    assert answer.headers["location"] == lands


def test_every_page_renders_for_an_operator(client, sim):
    sim.post("reply", {"app_id": "15", "mobile": "13800000001", "content": "收到，谢谢"})
    job_id = queued_job()
    log_in(client, "ops")
    for path in ("/ui/jobs", f"/ui/jobs/{job_id}", "/ui/accounts", "/ui/inbound", "/ui/suppressions",
                 "/ui/webhooks", "/ui/audit", "/ui/jobs?status=waiting", "/ui/jobs?status=queued&account=voice",
                 f"/ui/jobs/{job_id}?status=queued"):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
        assert "Content-Security-Policy" in answer.headers and 'charset="utf-8"' in answer.text
    page = client.get(f"/ui/jobs/{job_id}").text
    assert "Pause" in page and "Cancel" in page and "<svg" in page and "handed to the provider" in page


def test_pause_and_resume_from_the_console_are_audited(client):
    job_id = queued_job()
    csrf = log_in(client, "ops")
    answer = client.post(f"/ui/jobs/{job_id}/pause", data={"csrf": csrf})
    assert answer.status_code == 303 and "said=paused" in answer.headers["location"]
    assert job_view(job_id)["status"] == "paused"
    assert client.post(f"/ui/jobs/{job_id}/resume", data={"csrf": csrf}).status_code == 303
    assert job_view(job_id)["status"] == "queued"
    rows = audit_rows()
    assert [(r["key"], r["action"], r["target"]) for r in rows[:2]] == [
        ("ops", "job.resume", f"job:{job_id}"), ("ops", "job.pause", f"job:{job_id}")]
    again = client.post(f"/ui/jobs/{job_id}/resume", data={"csrf": csrf})
    assert "error=status" in again.headers["location"]  # not paused: said on the page, nothing done
    assert audit_rows()[0]["action"] == "job.resume" and audit_rows()[0]["id"] == rows[0]["id"]


@pytest.mark.parametrize("csrf, origin", [(None, None), ("forged", None), ("GOOD", "http://evil.example")])
def test_a_form_without_the_sessions_csrf_token_changes_nothing(client, csrf, origin):
    from models import AuditEntry, Suppression
    job_id = queued_job()
    good = log_in(client, "ops")
    data = {} if csrf is None else {"csrf": good if csrf == "GOOD" else csrf}
    headers = {"Origin": origin} if origin else {}
    before = count_rows(AuditEntry, Suppression)
    answers = [client.post(f"/ui/jobs/{job_id}/pause", data=data, headers=headers),
               client.post("/ui/suppressions", data={**data, "mobile": "13700000009"}, headers=headers)]
    assert [a.status_code for a in answers] == [422 if csrf is None else 403] * 2
    assert job_view(job_id)["status"] == "queued" and count_rows(AuditEntry, Suppression) == before


@pytest.mark.parametrize("key", ["viewer", "producer_voice", "viewer_voice"])
def test_who_may_not_act_sees_no_buttons_and_is_refused(client, key):
    from models import AuditEntry, Suppression
    job_id = queued_job()
    csrf = log_in(client, key)
    page = client.get(f"/ui/jobs/{job_id}").text
    assert ">Pause<" not in page and ">Cancel<" not in page
    before = count_rows(AuditEntry, Suppression)
    assert client.post(f"/ui/jobs/{job_id}/cancel", data={"csrf": csrf}).status_code == 403
    assert client.post("/ui/suppressions", data={"csrf": csrf, "mobile": "13700000008",
                                                 "scope": "voice"}).status_code == 403
    assert job_view(job_id)["status"] == "queued" and count_rows(AuditEntry, Suppression) == before


def test_a_key_sees_only_its_accounts(client):
    other = queued_job(account="sms")
    mine = queued_job()
    csrf = log_in(client, "ops_voice")
    status = job_view(other)["status"]  # qyxs schedules natively: its job runs at once
    jobs = client.get("/ui/jobs").text
    assert f'data-job="{mine}"' in jobs and f'data-job="{other}"' not in jobs
    assert client.get(f"/ui/jobs/{other}").status_code == 403 and client.get("/ui/jobs/999999").status_code == 404
    assert client.get(f"/ui/live/jobs?ids={other},{mine}").json().keys() == {str(mine)}
    assert client.post(f"/ui/jobs/{other}/pause", data={"csrf": csrf}).status_code == 403
    assert job_view(other)["status"] == status != "paused"
    accounts = client.get("/ui/accounts").text
    assert 'data-account="voice"' in accounts and 'data-account="sms"' not in accounts
    assert client.post("/ui/suppressions", data={"csrf": csrf, "mobile": "13700000007",
                                                 "scope": "*"}).status_code == 403


def test_producers_do_not_read_operations_pages(client):
    log_in(client, "producer_voice")
    for path in ("/ui/suppressions", "/ui/webhooks", "/ui/audit"):
        assert client.get(path).status_code == 403
    assert "/ui/audit" not in client.get("/ui/jobs").text


def test_a_session_ends_when_its_key_is_removed(client, app_env):
    import os
    log_in(client, "viewer")
    assert client.get("/ui/jobs").status_code == 200
    keyed_accounts_file(os.path.basename(os.environ["MSGRELAY_ACCOUNTS_FILE"]),
                        keys={k: v for k, v in TOKENS.items() if k != "viewer"})
    from msgrelay.accounts import reload_accounts
    reload_accounts()
    try:
        assert client.get("/ui/jobs").status_code == 303
    finally:
        keyed_accounts_file(os.path.basename(os.environ["MSGRELAY_ACCOUNTS_FILE"]))
        reload_accounts()


def test_suppressions_added_and_removed_with_chinese_reasons(client):
    csrf = log_in(client, "ops")
    answer = client.post("/ui/suppressions", data={"csrf": csrf, "mobile": "+86 137 0000 0010", "scope": "voice",
                                                   "reason": "用户要求退订"})
    assert "said=" in answer.headers["location"]
    page = client.get("/ui/suppressions?mobile=13700000010").text
    assert "用户要求退订" in page and "13700000010" in page
    bad = client.post("/ui/suppressions", data={"csrf": csrf, "mobile": "not-a-phone", "scope": "voice"})
    assert "error=mobile" in bad.headers["location"]
    client.post("/ui/suppressions/remove", data={"csrf": csrf, "mobile": "13700000010", "scope": "voice"})
    assert "13700000010" not in client.get("/ui/suppressions?mobile=13700000010").text.split("<tbody>")[1]
    assert [r["action"] for r in audit_rows()[:2]] == ["suppression.remove", "suppression.add"]


def test_a_running_job_shows_live_progress_and_a_chart(client, sim):
    from msgrelay.accounts import get_accounts
    from msgrelay.submit import submit_job
    from tasks import enqueue_chunks
    sim.post("faults", {"latency_s": 1.0})  # 8 requests of a second on 2 worker processes: several sweeps see it run
    try:
        job_id = submit_job(accounts=get_accounts(), account="voice", kind="notify", recipients=mobiles("136", 4000),
                            content="您的快递已到", enqueue=enqueue_chunks).id
        log_in(client, "viewer")
        seen = []
        wait_until(lambda: seen.append(client.get(f"/ui/live/jobs?ids={job_id}").json()[str(job_id)]) or
                   seen[-1]["status"] == "done", timeout_s=90, what="the job done")
    finally:
        sim.post("faults", {})
    assert seen[-1]["counts"]["queued"] == seen[-1]["counts"]["submitted"] == 0 and seen[-1]["total"] == 4000
    assert len({s["counts"]["queued"] for s in seen}) > 1  # the counts moved while it ran
    chart = client.get(f"/ui/jobs/{job_id}/chart")
    assert chart.headers["content-type"].startswith("image/svg+xml") and chart.text.count("<polyline") == 3
    from models import JobProgress, session_scope
    from sqlalchemy import func, select
    with session_scope() as session:  # the sweeper noted it while it ran
        assert session.scalar(select(func.count()).where(JobProgress.job_id == job_id)) >= 1
    wait_done(job_id)
