"""API keys, roles and the audit log (DESIGN §9 "API keys") through an app of its own: the session's accounts
file plus three keys (a producer and an operator of `voice`, a viewer of every account) and MSGRELAY_API_TOKEN.
The session's worker sends on the session's file (the same accounts), so the jobs submitted here are really sent.

The keys are not in the session's file: there they would make every other test's API demand a token."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api_helpers import TOKEN, auth, count_rows, environment
from tests.conftest import TEST_DIR
from tests.e2e.conftest import job_view, mobiles, wait_done

pytestmark = pytest.mark.e2e

#: the keys' bearer tokens: only their SHA-256 is written to the accounts file
PRODUCER_TOKEN = "prod-voice-Tk7Qm2Lx9"
VIEWER_TOKEN = "view-all-Hb3Wn8Rc1"
OPERATOR_TOKEN = "oper-voice-Zp5Ys4Jd6"
WRONG_TOKEN = "not-a-key-Vv0Vv0Vv0"
KEYS = {"producer_voice": (PRODUCER_TOKEN, "producer", '["voice"]'),
        "viewer_all": (VIEWER_TOKEN, "viewer", '["*"]'),
        "operator_voice": (OPERATOR_TOKEN, "operator", '["voice"]')}
TOKENS = {"producer": PRODUCER_TOKEN, "viewer": VIEWER_TOKEN, "operator": OPERATOR_TOKEN, "api-token": TOKEN,
          "wrong": WRONG_TOKEN, "none": None}


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def keys_toml() -> str:
    """The `[api_keys.*]` tables of KEYS."""
    return "".join(f'\n[api_keys.{name}]\ntoken_sha256 = "{sha256(token)}"\nrole = "{role}"\naccounts = {accounts}\n'
                   for name, (token, role, accounts) in KEYS.items())


@pytest.fixture(scope="module")
def keyed(stack) -> Iterator[TestClient]:
    """An API whose accounts file is the session's plus the keys, with MSGRELAY_API_TOKEN set too."""
    path = TEST_DIR / "accounts-with-keys.toml"
    session_file = Path(os.environ["MSGRELAY_ACCOUNTS_FILE"]).read_text(encoding="utf-8")
    path.write_text(session_file + keys_toml(), encoding="utf-8")
    assert all(token not in path.read_text() for token, _, _ in KEYS.values())
    from api.app import create_app
    with environment(MSGRELAY_ACCOUNTS_FILE=str(path), MSGRELAY_API_TOKEN=TOKEN):
        with TestClient(create_app(), raise_server_exceptions=False) as client:
            yield client


def call(client: TestClient, who: str, method: str, path: str, body: dict | None = None):
    """`method path` as `who` (a key of TOKENS)."""
    token = TOKENS[who]
    return client.request(method, path, json=body, headers=auth(token) if token else {})


def in_an_hour() -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()


@dataclass
class Jobs:
    """A queued job of `voice` (the producer's and operator's account) and one of `limited` (not theirs)."""

    mine: int
    other: int


@pytest.fixture
def jobs(keyed) -> Iterator[Jobs]:
    """Two jobs sent an hour from now (they stay queued), cancelled after the test whatever it did."""
    made = []
    for account, prefix in (("voice", "198"), ("limited", "197")):
        answer = call(keyed, "api-token", "POST", "/v1/jobs", {
            "account": account, "kind": "notify", "content": "通知", "recipients": mobiles(prefix, 3),
            "send_at": in_an_hour()})
        assert answer.status_code == 202, answer.text
        made.append(answer.json()["id"])
    yield Jobs(*made)
    for job_id in made:
        call(keyed, "api-token", "POST", f"/v1/jobs/{job_id}/cancel")


def audit_rows(client: TestClient, **params) -> list[dict]:
    answer = client.get("/v1/audit", params=params, headers=auth(VIEWER_TOKEN))
    assert answer.status_code == 200, answer.text
    return answer.json()


def snapshot(jobs: Jobs) -> tuple:
    """What a refused request must leave as it was: row counts, and both jobs' status."""
    from models import AuditEntry, Job, Suppression
    return (*count_rows(Job, Suppression, AuditEntry), job_view(jobs.mine)["status"], job_view(jobs.other)["status"])


# (who, method, path, body, status): MINE and OTHER stand for the two jobs' ids
JOB = {"account": "voice", "kind": "notify", "content": "通知", "recipients": ["19900000001"]}
OTHER_JOB = {**JOB, "account": "limited"}
SUPPRESSION = {"mobile": "19900000009", "scope": "voice"}
TABLE = [
    # a viewer reads everything, and nothing else (refused before the body is read)
    ("viewer", "GET", "/v1/jobs", None, 200),
    ("viewer", "GET", "/v1/jobs/MINE", None, 200),
    ("viewer", "GET", "/v1/jobs/OTHER", None, 200),
    ("viewer", "GET", "/v1/jobs/OTHER/messages", None, 200),
    ("viewer", "GET", "/v1/balances", None, 200),
    ("viewer", "GET", "/v1/inbound", None, 200),
    ("viewer", "GET", "/v1/templates", None, 200),
    ("viewer", "GET", "/v1/routes", None, 200),
    ("viewer", "GET", "/v1/suppressions", None, 200),
    ("viewer", "GET", "/v1/webhooks/deliveries", None, 200),
    ("viewer", "GET", "/v1/audit", None, 200),
    ("viewer", "POST", "/v1/jobs", JOB, 403),
    ("viewer", "POST", "/v1/jobs/MINE/pause", None, 403),
    ("viewer", "POST", "/v1/jobs/MINE/cancel", None, 403),
    ("viewer", "POST", "/v1/suppressions", SUPPRESSION, 403),
    ("viewer", "DELETE", "/v1/suppressions/19900000009?scope=voice", None, 403),
    ("viewer", "POST", "/v1/webhooks/deliveries/1/retry", None, 403),
    ("viewer", "POST", "/v1/accounts/voice/resume", None, 403),
    # a producer reads its accounts' jobs (another's is 403) and may not operate
    ("producer", "GET", "/v1/jobs", None, 200),
    ("producer", "GET", "/v1/jobs/MINE", None, 200),
    ("producer", "GET", "/v1/jobs/MINE/messages", None, 200),
    ("producer", "GET", "/v1/jobs/OTHER", None, 403),
    ("producer", "GET", "/v1/jobs/OTHER/messages", None, 403),
    ("producer", "GET", "/v1/balances", None, 200),
    ("producer", "GET", "/v1/inbound", None, 200),
    ("producer", "GET", "/v1/templates", None, 200),
    ("producer", "GET", "/v1/routes", None, 200),
    ("producer", "GET", "/v1/suppressions", None, 403),
    ("producer", "GET", "/v1/webhooks/deliveries", None, 403),
    ("producer", "GET", "/v1/audit", None, 403),
    ("producer", "POST", "/v1/jobs", OTHER_JOB, 403),
    ("producer", "POST", "/v1/jobs", {**JOB, "account": None, "route": "pair"}, 403),
    ("producer", "POST", "/v1/jobs/MINE/pause", None, 403),
    ("producer", "POST", "/v1/jobs/MINE/resume", None, 403),
    ("producer", "POST", "/v1/jobs/MINE/cancel", None, 403),
    ("producer", "POST", "/v1/suppressions", SUPPRESSION, 403),
    ("producer", "DELETE", "/v1/suppressions/19900000009?scope=voice", None, 403),
    ("producer", "POST", "/v1/webhooks/deliveries/1/retry", None, 403),
    ("producer", "POST", "/v1/accounts/voice/resume", None, 403),
    # an operator of voice operates on voice only: another account's job is 403, naming another account is 403
    ("operator", "GET", "/v1/jobs/MINE", None, 200),
    ("operator", "GET", "/v1/jobs/OTHER", None, 403),
    ("operator", "POST", "/v1/jobs/OTHER/pause", None, 403),
    ("operator", "POST", "/v1/jobs/OTHER/resume", None, 403),
    ("operator", "POST", "/v1/jobs/OTHER/cancel", None, 403),
    ("operator", "POST", "/v1/jobs", OTHER_JOB, 403),
    ("operator", "POST", "/v1/suppressions", {**SUPPRESSION, "scope": "*"}, 403),
    ("operator", "POST", "/v1/suppressions", {**SUPPRESSION, "scope": "limited"}, 403),
    ("operator", "DELETE", "/v1/suppressions/19900000009", None, 403),
    ("operator", "POST", "/v1/accounts/limited/resume", None, 403),
    ("operator", "GET", "/v1/suppressions", None, 200),
    ("operator", "GET", "/v1/audit", None, 200),
    # no token, or a wrong one: 401 before anything
    ("none", "GET", "/v1/jobs", None, 401),
    ("none", "POST", "/v1/jobs", JOB, 401),
    ("wrong", "GET", "/v1/jobs/MINE", None, 401),
    ("wrong", "POST", "/v1/jobs", JOB, 401),
    ("wrong", "POST", "/v1/jobs/MINE/pause", None, 401),
    ("wrong", "POST", "/v1/suppressions", SUPPRESSION, 401),
]


def test_each_role_may_do_what_it_may_and_each_refusal_changes_nothing(keyed, jobs):
    # given
    before = snapshot(jobs)
    answers = []
    # when
    for who, method, path, body, _ in TABLE:
        path = path.replace("MINE", str(jobs.mine)).replace("OTHER", str(jobs.other))
        answer = call(keyed, who, method, path, body)
        answers.append(answer.status_code)
        # then every refusal says why, and never echoes a token
        if answer.status_code == 403:
            assert f"{who} key" in answer.json()["detail"], (who, method, path, answer.text)
        assert not any(t in answer.text for t in TOKENS.values() if t), (who, method, path)
    # then
    expected = [status for *_, status in TABLE]
    assert answers == expected, [(who, method, path, got) for (who, method, path, _, want), got
                                 in zip(TABLE, answers) if got != want]
    assert snapshot(jobs) == before


def test_a_viewer_write_is_refused_before_its_body_is_read(keyed):
    answer = keyed.post("/v1/jobs", content=b"{not json", headers={**auth(VIEWER_TOKEN),
                                                                   "content-type": "application/json"})
    assert answer.status_code == 403
    assert "viewer key 'viewer_all' (every account) may read (GET) only" in answer.json()["detail"]


def test_a_producer_sees_only_its_accounts_jobs(keyed, jobs):
    # when
    listed = call(keyed, "producer", "GET", "/v1/jobs?limit=1000").json()
    everything = call(keyed, "viewer", "GET", "/v1/jobs?limit=1000").json()
    # then
    assert jobs.mine in {j["id"] for j in listed} and jobs.other not in {j["id"] for j in listed}
    assert {j["account"] for j in listed} == {"voice"} and all(j["route"] is None for j in listed)
    assert {jobs.mine, jobs.other} <= {j["id"] for j in everything}
    refused = call(keyed, "producer", "GET", f"/v1/jobs/{jobs.other}")
    assert refused.status_code == 403 and refused.json() == {"detail": (
        f"producer key 'producer_voice' (accounts voice) may not act on job {jobs.other}: it is not of the key's "
        "accounts")}  # the other account's name is not told
    assert call(keyed, "producer", "GET", "/v1/jobs/999999").status_code == 404


def test_a_producer_submitting_to_another_account_or_route_is_403_naming_it(keyed):
    # when
    account = call(keyed, "producer", "POST", "/v1/jobs", OTHER_JOB)
    route = call(keyed, "producer", "POST", "/v1/jobs", {**JOB, "account": None, "route": "pair"})
    # then
    assert account.status_code == 403 and "account 'limited'" in account.json()["detail"]
    assert route.status_code == 403 and "route 'pair'" in route.json()["detail"]
    assert "ra, rb" in route.json()["detail"]


def test_a_producers_job_is_accepted_and_sent(keyed, sim):
    # when
    answer = call(keyed, "producer", "POST", "/v1/jobs", {**JOB, "recipients": mobiles("196", 5)})
    # then
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    view = wait_done(job_id)
    assert view["account"] == "voice" and sum(view["counts"].values()) == 5
    assert call(keyed, "producer", "GET", f"/v1/jobs/{job_id}").json()["status"] == "done"


def test_a_wrong_token_writes_nothing(keyed):
    from models import AuditEntry, Job, Suppression
    before = count_rows(Job, Suppression, AuditEntry)
    for path, body in (("/v1/jobs", JOB), ("/v1/suppressions", SUPPRESSION)):
        answer = call(keyed, "wrong", "POST", path, body)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert count_rows(Job, Suppression, AuditEntry) == before


def test_operator_actions_are_in_the_audit_log_with_key_action_target_and_time(keyed, jobs):
    # given
    started = datetime.now(timezone.utc) - timedelta(seconds=1)
    mobile = "19900000042"
    # when the operator of voice pauses, resumes and cancels its job, and adds and lifts a suppression
    for action in ("pause", "resume", "cancel"):
        answer = call(keyed, "operator", "POST", f"/v1/jobs/{jobs.mine}/{action}")
        assert answer.status_code == 200, answer.text
    added = call(keyed, "operator", "POST", "/v1/suppressions", {"mobile": mobile, "scope": "voice", "reason": "asked"})
    assert added.status_code == 201, added.text
    assert call(keyed, "operator", "DELETE", f"/v1/suppressions/{mobile}?scope=voice").status_code == 204
    # then the viewer reads them, newest first
    rows = audit_rows(keyed, key="operator_voice", limit=5)
    assert [(r["action"], r["target"]) for r in rows] == [
        ("suppression.remove", f"suppression:voice:{mobile}"), ("suppression.add", f"suppression:voice:{mobile}"),
        ("job.cancel", f"job:{jobs.mine}"), ("job.resume", f"job:{jobs.mine}"), ("job.pause", f"job:{jobs.mine}")]
    assert all(r["key"] == "operator_voice" for r in rows)
    assert all(started <= datetime.fromisoformat(r["at"]) <= datetime.now(timezone.utc) for r in rows)
    assert rows[1]["detail"] == "asked" and rows[2]["detail"] == "3 unsent messages rejected"
    assert [r["target"] for r in audit_rows(keyed, key="operator_voice", action="job.pause", limit=1)] == [
        f"job:{jobs.mine}"]
    # and the producer may not read them
    assert call(keyed, "producer", "GET", "/v1/audit").status_code == 403


def test_a_refused_or_failed_action_leaves_no_audit_row(keyed, jobs):
    from models import AuditEntry
    before = count_rows(AuditEntry)
    assert call(keyed, "operator", "POST", f"/v1/jobs/{jobs.mine}/resume").status_code == 422  # not paused
    assert call(keyed, "operator", "DELETE", "/v1/suppressions/19900000077?scope=voice").status_code == 404
    assert call(keyed, "producer", "POST", f"/v1/jobs/{jobs.mine}/pause").status_code == 403
    assert count_rows(AuditEntry) == before


def test_the_api_token_is_still_an_operator_of_every_account(keyed, jobs):
    # when
    paused = call(keyed, "api-token", "POST", f"/v1/jobs/{jobs.other}/pause")
    resumed = call(keyed, "api-token", "POST", "/v1/accounts/limited/resume")
    # then
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert resumed.status_code == 200 and resumed.json() == {"account": "limited", "resumed": False}
    rows = audit_rows(keyed, key="api-token", limit=2)
    assert [(r["action"], r["target"], r["detail"]) for r in rows] == [
        ("account.resume", "account:limited", "was not paused"), ("job.pause", f"job:{jobs.other}", None)]


def test_the_command_line_writes_audit_rows_as_cli(keyed):
    # given (the CLI uses the session's file: no keys, no token)
    env = {**os.environ, "MSGRELAY_ACCOUNTS_FILE": str(TEST_DIR / "accounts.toml")}
    env.pop("MSGRELAY_API_TOKEN", None)
    mobile = "19900000043"
    # when
    for verb in ("add", "remove"):
        out = subprocess.run([sys.executable, "-m", "msgrelay.cli", "suppress", verb, mobile, "--scope", "voice"],
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
    # then
    rows = audit_rows(keyed, key="cli", limit=2)
    assert [(r["action"], r["target"]) for r in rows] == [
        ("suppression.remove", f"suppression:voice:{mobile}"), ("suppression.add", f"suppression:voice:{mobile}")]


def test_no_token_is_ever_in_an_audit_row(keyed):
    rows = audit_rows(keyed, limit=1000)
    text = repr(rows)
    assert not any(t in text or sha256(t) in text for t in TOKENS.values() if t)


def test_keys_alone_close_the_api_without_msgrelay_api_token(keyed):
    # given the same keys, and no MSGRELAY_API_TOKEN
    from api.app import create_app
    from msgrelay.settings import get_settings
    with environment(MSGRELAY_API_TOKEN=None), TestClient(create_app()) as client:
        assert get_settings().api_token is None
        # when / then: no token is no longer the local operator, and the old token is just a wrong one
        assert client.get("/v1/jobs").status_code == 401
        assert client.get("/v1/jobs", headers=auth(TOKEN)).status_code == 401
        assert client.get("/v1/jobs", headers=auth(VIEWER_TOKEN)).status_code == 200
        assert client.get("/healthz").status_code == 200  # outside /v1: no token needed


def test_a_key_of_some_accounts_sees_and_retries_only_deliveries_to_its_jobs_receivers(keyed):
    """A delivery carries the events of the jobs that send to its receiver: a key of `voice` lists and retries only
    deliveries to receivers of voice jobs; another account's is absent (404) and stays dead."""
    from sqlalchemy import update

    from models import Job, WebhookDelivery, WebhookReceiver, session_scope
    ids = {}
    with session_scope() as session:
        for account in ("voice", "limited"):
            receiver = WebhookReceiver(url=f"https://{account}-{os.getpid()}.example/hook")
            session.add(receiver)
            session.flush()
            job_id = submit_job_row(session, account)
            session.execute(update(Job).where(Job.id == job_id).values(webhook_receiver_id=receiver.id))
            delivery = WebhookDelivery(receiver_id=receiver.id, status="dead", events=3, attempts=30)
            session.add(delivery)
            session.flush()
            ids[account] = delivery.id
    listed = {d["id"] for d in call(keyed, "operator", "GET", "/v1/webhooks/deliveries?limit=1000").json()}
    assert ids["voice"] in listed and ids["limited"] not in listed
    everyone = {d["id"] for d in call(keyed, "viewer", "GET", "/v1/webhooks/deliveries?limit=1000").json()}
    assert {ids["voice"], ids["limited"]} <= everyone
    assert call(keyed, "operator", "POST", f"/v1/webhooks/deliveries/{ids['limited']}/retry").status_code == 404
    assert call(keyed, "operator", "POST", f"/v1/webhooks/deliveries/{ids['voice']}/retry").status_code == 200
    with session_scope() as session:
        assert session.get(WebhookDelivery, ids["limited"]).status == "dead"
        assert session.get(WebhookDelivery, ids["voice"]).status == "pending"


def submit_job_row(session, account: str) -> int:
    """A job row of `account` (no messages: only its receiver matters here)."""
    from models import Job
    job = Job(uid=f"dl{os.getpid()}{account}"[:24], account=account, provider="emay_voice", kind="notify",
              status="done", options={})
    session.add(job)
    session.flush()
    return job.id
