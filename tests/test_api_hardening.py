"""Bad input is a 4xx naming the field, never a 500; the token is checked before the body; bodies are capped; a bad
accounts file stops the app and is never called healthy (issue 8, holes 13, 14, 15)."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from msgrelay.cli.processes import free_port, http_ok, wait_for
from tests.api_helpers import TOKEN, auth, environment, job_count
from tests.conftest import TEST_DIR

pytestmark = pytest.mark.db

JOB = {"account": "voice", "kind": "notify", "content": "hi", "recipients": ["13800000000"]}
BAD_ACCOUNTS = """
[accounts.voice]
provider = "emay_voice"
base_url = "http://127.0.0.1:9"
app_id = "EUCP-EMY-BAD"
secret_key = "s3cret-Value-77aa"
colour = "red"
"""


@pytest.fixture
def guarded(database) -> Iterator[TestClient]:
    """An app with MSGRELAY_API_TOKEN set (and the default body cap)."""
    with environment(MSGRELAY_API_TOKEN=TOKEN), TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def capped(database) -> Iterator[TestClient]:
    """An app with MSGRELAY_API_TOKEN set and a 4 KiB body cap."""
    with environment(MSGRELAY_API_TOKEN=TOKEN, MSGRELAY_MAX_BODY_BYTES="4096"):
        with TestClient(create_app(), raise_server_exceptions=False) as client:
            yield client


def post_raw(client: TestClient, path: str, text: str, **headers: str) -> httpx.Response:
    """POST a JSON text as it is (lone surrogates and NULs survive only as JSON escapes)."""
    return client.post(path, content=text.encode(), headers={"content-type": "application/json", **auth(), **headers})


def detail_of(answer: httpx.Response) -> dict:
    """The first 422 item, checked to be FastAPI's shape plus `field`, with no echo of the input."""
    assert answer.status_code == 422, answer.text
    item = answer.json()["detail"][0]
    assert set(item) == {"type", "loc", "field", "msg"}, item
    return item


# --- hole 14: the token before the body, and a cap on bodies ----------------------------------------------

@pytest.mark.parametrize("header", [
    "Bearer tökén".encode(), "Bearer \xff\xfe".encode("latin-1"), b"Bearer", b"Bearer ", b"bearer wrong",
    b"Basic dXNlcjpwYXNz", f"Bearer {TOKEN}x".encode(), f"Token {TOKEN}".encode(),
])
def test_any_wrong_authorization_is_401_never_500(guarded, header):
    # when
    answer = guarded.get("/v1/jobs", headers={"Authorization": header})
    # then
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert answer.json() == {"detail": "missing or wrong bearer token"}


def test_a_non_ascii_token_is_compared_as_utf8_bytes(database):
    with environment(MSGRELAY_API_TOKEN="tök€n-1"), TestClient(create_app()) as client:
        assert client.get("/v1/jobs", headers={"Authorization": "Bearer tök€n-1".encode()}).status_code == 200
        assert client.get("/v1/jobs", headers={"Authorization": "Bearer tök€n-2".encode()}).status_code == 401


def test_without_the_token_the_body_is_never_read(database):
    # given an app guarded by a token, and a body that records whether anyone read it
    reads: list[int] = []
    sent: list[dict] = []

    async def receive() -> dict:
        reads.append(1)
        return {"type": "http.request", "body": b'{"not": "even a job"', "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/jobs", "raw_path": b"/v1/jobs", "root_path": "", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"20")],
             "server": ("testserver", 80), "client": ("127.0.0.1", 5000)}
    # when
    with environment(MSGRELAY_API_TOKEN=TOKEN):
        asyncio.run(create_app()(scope, receive, send))
    # then
    assert sent[0]["status"] == 401 and reads == []


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/accounts/sms/check-content", "/v1/no-such-route"])
def test_a_bad_body_without_the_token_is_401_not_422(guarded, path):
    answer = guarded.post(path, content=b"\xff{not json", headers={"content-type": "application/json"})
    assert answer.status_code == 401


def test_a_body_over_the_cap_is_413_naming_the_limit(capped):
    # given a 4 KiB cap, and a job over it
    before = job_count()
    big = json.dumps({**JOB, "content": "x" * 5000})
    # when / then: its declared length is over the cap
    answer = post_raw(capped, "/v1/jobs", big)
    assert answer.status_code == 413
    assert "4096 bytes" in answer.json()["detail"] and "MSGRELAY_MAX_BODY_BYTES" in answer.json()["detail"]
    # and a streamed (chunked) body, which passes the cap while it is read
    chunks = (big[i:i + 1000].encode() for i in range(0, len(big), 1000))
    streamed = capped.post("/v1/jobs", content=chunks, headers={"content-type": "application/json", **auth()})
    assert streamed.status_code == 413 and "4096" in streamed.text
    assert job_count() == before


def test_a_body_at_the_cap_is_read(capped):
    body = json.dumps({**JOB, "account": "a" * 10, "content": ""})
    body = body.replace('"content": ""', '"content": "' + "x" * (4096 - len(body)) + '"')
    assert len(body.encode()) == 4096
    answer = post_raw(capped, "/v1/jobs", body)
    assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "account"


@pytest.fixture
def api_process(database) -> Iterator[str]:
    """A real `uvicorn api.app:app` with the token set and a 1 MiB cap."""
    port = free_port()
    env = {**os.environ, "MSGRELAY_API_TOKEN": TOKEN, "MSGRELAY_MAX_BODY_BYTES": str(1024 * 1024)}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:app", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), what="the API", timeout_s=60)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def first_line_after_headers_only(address: str, headers: str) -> str:
    """Send a request's headers and no body byte; the status line the server answers with (5 s at most)."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(headers.encode())
        started = time.monotonic()
        data = conn.recv(4096).decode(errors="replace")
        assert time.monotonic() - started < 5
    return data.split("\r\n", 1)[0]


def test_a_real_server_answers_before_a_gigabyte_body_arrives(api_process):
    # given a request that announces 1 GB and sends none of it
    head = ("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000000000\r\n{auth}\r\n")
    # when / then: without the token, 401 at once
    assert " 401 " in first_line_after_headers_only(api_process, head.format(auth=""))
    # and with it, 413 at once (the cap is 1 MiB)
    line = first_line_after_headers_only(api_process, head.format(auth=f"Authorization: Bearer {TOKEN}\r\n"))
    assert " 413 " in line


# --- hole 13: bad input is a 4xx naming the field ------------------------------------------------------------

@pytest.mark.parametrize("text, field", [
    ('{"account":"voice","kind":"notify","content":"hi","recipients":["13800000000"],"idempotency_key":"\\ud800"}',
     "idempotency_key"),
    ('{"account":"voice","kind":"notify","content":"h\\udfffi","recipients":["13800000000"]}', "content"),
    ('{"account":"voice","kind":"notify","content":"hi","recipients":[{"mobile":"13800000000","custom_id":"a\\ud800"}]}',
     "recipients[0].custom_id"),
    ('{"account":"voice","kind":"notify","recipients":[{"mobile":"13800000000","content":"\\udc00"}]}',
     "recipients[0].content"),
    ('{"account":"voice","kind":"notify","content":"hi","recipients":["13800000000","1380000000\\ud800"]}',
     "recipients[1]"),
    ('{"account":"voice","kind":"notify","content":"hi","recipients":[{"mobile":"\\ud800"}]}', "recipients[0].mobile"),
    ('{"account":"ims","kind":"ims","content":"hi","recipients":["+61422118000"],"options":{"country":"\\ud800"}}',
     "options.country"),
    ('{"account":"ims","kind":"ims","content":"hi","recipients":["+61422118000"],"options":{"\\ud800":"x"}}',
     "options"),
    ('{"account":"mms","kind":"mms","content":[[{"con_type":"text","ext_type":"txt","data":"\\ud800"}]],'
     '"recipients":["13800000000"]}', "content[0][0].data"),
    ('{"account":"vo\\ud800","kind":"notify","content":"hi","recipients":["13800000000"]}', "account"),
    ('{"account":"voice","kind":"notify","content":"a\\u0000b","recipients":["13800000000"]}', "content"),
    ('{"account":"voice","kind":"notify","content":"hi","recipients":["13800000000"],"idempotency_key":"k\\u0000"}',
     "idempotency_key"),
    ('{"account":"voice","kind":"notify","content":"hi","recipients":["13800000000"],"options":{"connectTime":NaN}}',
     "options.connectTime"),
    ('{"account":"voice","kind":"notify","content":"hi","recipients":["13800000000"],"options":{"x":1e999}}',
     "options.x"),
    ('{"account":"mms","kind":"mms","content":"hi","recipients":["13800000000"],"options":{"product_id":'
     + "9" * 30 + "}}", "options.product_id"),
])
def test_text_and_numbers_no_column_can_keep_are_422_naming_the_field(guarded, text, field):
    # given
    before = job_count()
    # when
    answer = post_raw(guarded, "/v1/jobs", text)
    # then
    item = detail_of(answer)
    assert item["field"] == field and item["msg"], item
    assert job_count() == before


@pytest.mark.parametrize("path, text, field", [
    ("/v1/accounts/sms/check-content", '{"content":"\\ud800"}', "content"),
    ("/v1/accounts/mms/templates", '{"title":"t\\ud800","content":"x","sign_name":"【互亿无线】"}', "title"),
    ("/v1/accounts/mms/templates",
     '{"title":"t","content":[[{"con_type":"text","ext_type":"txt","data":"\\u0000"}]],"sign_name":"【互亿无线】"}',
     "content[0][0].data"),
])
def test_other_bodies_refuse_unstorable_text_too(guarded, path, text, field):
    assert detail_of(post_raw(guarded, path, text))["field"] == field


@pytest.mark.parametrize("body, words", [
    (b"\x9f{}", "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested"),
    (b'{"account": ' + b"9" * 5000 + b"}", "4,300 digits"),
    (b'{"account": "voice",', "valid JSON"),
])
def test_a_body_that_is_not_json_is_422_naming_the_body(guarded, body, words):
    item = detail_of(guarded.post("/v1/jobs", content=body, headers={"content-type": "application/json", **auth()}))
    assert item["field"] == "body" and words in item["msg"]


def test_json_nested_deeper_than_any_job_needs_is_422(guarded):
    content = json.loads("[" * 40 + "]" * 40)
    item = detail_of(guarded.post("/v1/jobs", headers=auth(), json={**JOB, "content": content}))
    assert item["field"].startswith("content[0]") and "nested too deeply" in item["msg"]


def test_a_field_named_with_unicode_digits_is_named_back(database):
    # given a real account, so the flow itself names the option (`options.²`: "²".isdigit(), but int("²") fails)
    path = TEST_DIR / "hardening-accounts.toml"
    path.write_text(BAD_ACCOUNTS.replace('colour = "red"\n', ""), encoding="utf-8")
    with environment(MSGRELAY_ACCOUNTS_FILE=str(path)), TestClient(create_app()) as client:
        # when
        answer = client.post("/v1/jobs", json={**JOB, "options": {"²": "x"}})
    # then
    item = detail_of(answer)
    assert item["field"] == "options.²" and "unknown option" in item["msg"]


@pytest.mark.parametrize("options, field", [
    ({"country": "1" * 5000}, "options.country"),
    ({"country": "6" * 4301}, "options.country"),
    ({"x" * 65: "1"}, "options"),
])
def test_over_long_options_are_422(guarded, options, field):
    answer = guarded.post("/v1/jobs", headers=auth(), json={**JOB, "account": "ims", "kind": "ims", "options": options})
    item = detail_of(answer)
    assert item["field"].startswith(field) and item["msg"]


@pytest.mark.parametrize("send_at, words", [
    ("9999-12-31T23:59:59-05:00", "out of range once converted to UTC"),
    ("0001-01-01T00:00:00+05:00", "out of range once converted to UTC"),
    ("2030-01-01T08:00:00", "time zone"),
    ("10000-01-01T00:00:00Z", ""),
])
def test_send_at_that_cannot_be_utc_is_422(guarded, send_at, words):
    item = detail_of(guarded.post("/v1/jobs", headers=auth(), json={**JOB, "send_at": send_at}))
    assert item["field"] == "send_at" and words in item["msg"]


@pytest.mark.parametrize("method, path, field", [
    ("get", "/v1/jobs/99999999999999999999", "job_id"),
    ("get", f"/v1/jobs/{2**31}", "job_id"),
    ("get", "/v1/jobs/0", "job_id"),
    ("get", "/v1/jobs/-1/messages", "job_id"),
    ("get", "/v1/jobs/99999999999999999999/messages", "job_id"),
    ("post", "/v1/jobs/99999999999999999999/pause", "job_id"),
    ("post", "/v1/jobs/99999999999999999999/resume", "job_id"),
    ("post", "/v1/jobs/99999999999999999999/cancel", "job_id"),
    ("get", f"/v1/jobs?offset={10**30}", "offset"),
    ("get", f"/v1/jobs/1/messages?offset={10**30}", "offset"),
    ("get", f"/v1/inbound?offset={10**30}", "offset"),
    ("get", f"/v1/templates?offset={10**30}", "offset"),
])
def test_ids_and_offsets_beyond_the_databases_integers_are_422(guarded, method, path, field):
    item = detail_of(getattr(guarded, method)(path, headers=auth()))
    assert item["field"] == field


@pytest.mark.parametrize("path, status", [
    (f"/v1/jobs/{2**31 - 1}", 404),
    (f"/v1/jobs/{2**31 - 1}/messages", 404),
    (f"/v1/jobs?offset={2**63 - 1}", 200),
    (f"/v1/inbound?offset={2**63 - 1}", 200),
    (f"/v1/templates?offset={2**63 - 1}", 200),
])
def test_the_largest_id_and_offset_the_database_holds_are_answered(guarded, path, status):
    answer = guarded.get(path, headers=auth())
    assert answer.status_code == status, answer.text
    assert status == 404 or answer.json() == []


@pytest.mark.parametrize("path", ["/v1/inbound?account=%00", "/v1/templates?account=a%00b",
                                  "/v1/inbound?account=" + "a" * 65])
def test_account_filters_the_database_cannot_compare_are_422(guarded, path):
    assert detail_of(guarded.get(path, headers=auth()))["field"] == "account"


@pytest.mark.parametrize("recipients, field", [
    ([5], "recipients[0]"),
    (["13800000000", {"mobile": "13800000001", "colour": "red"}], "recipients[1].colour"),
    ([{"mobile": "13800000000", "custom_id": "c" * 65}], "recipients[0].custom_id"),
    ([{"content": "no mobile"}], "recipients[0].mobile"),
])
def test_a_bad_recipient_is_named_by_its_place_alone(guarded, recipients, field):
    answer = guarded.post("/v1/jobs", headers=auth(), json={**JOB, "recipients": recipients})
    assert [i["field"] for i in answer.json()["detail"]] == [field]


# --- hole 15: a bad accounts file stops the app, and /healthz never calls it healthy ---------------------

@pytest.fixture
def bad_accounts() -> Iterator[Path]:
    """An accounts file with an unknown field, made the configured one."""
    path = TEST_DIR / "bad-accounts.toml"
    path.write_text(BAD_ACCOUNTS, encoding="utf-8")
    with environment(MSGRELAY_ACCOUNTS_FILE=str(path)):
        yield path


def test_the_app_refuses_to_start_naming_file_account_and_field(database, bad_accounts):
    from providers.errors import ConfigError
    with pytest.raises(ConfigError) as caught, TestClient(create_app()):
        pass
    text = str(caught.value)
    assert str(bad_accounts) in text and "'voice'" in text and "'colour'" in text
    assert "s3cret-Value-77aa" not in text


def test_healthz_is_503_and_jobs_are_503_while_the_accounts_file_is_broken(database, bad_accounts):
    # given an app whose start-up check did not run (a server with lifespan off)
    client = TestClient(create_app(), raise_server_exceptions=False)
    # when
    health = client.get("/healthz")
    job = client.post("/v1/jobs", json=JOB)
    # then
    assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert str(bad_accounts) in health.json()["config"] and "'colour'" in health.json()["config"]
    assert job.status_code == 503 and "'colour'" in job.json()["detail"]
    assert "s3cret-Value-77aa" not in health.text + job.text


def test_healthz_names_an_unreadable_accounts_file(database):
    path = TEST_DIR / "not-utf8-accounts.toml"
    path.write_bytes(b'[accounts.x]\nprovider = "\xff"\n')
    with environment(MSGRELAY_ACCOUNTS_FILE=str(path)):
        health = TestClient(create_app(), raise_server_exceptions=False).get("/healthz")
    assert health.status_code == 503 and "not UTF-8" in health.json()["config"]


def test_uvicorn_exits_when_the_accounts_file_is_bad(database, bad_accounts):
    # when the app itself is served (not through the CLI, which may refuse earlier)
    env = {**os.environ, "MSGRELAY_ACCOUNTS_FILE": str(bad_accounts)}
    out = subprocess.run([sys.executable, "-m", "uvicorn", "api.app:app", "--port", str(free_port())], env=env,
                         capture_output=True, text=True, timeout=60)
    # then it stops, naming file, account and field, and never the secret
    assert out.returncode != 0
    assert str(bad_accounts) in out.stderr and "'voice'" in out.stderr and "'colour'" in out.stderr
    assert "cannot start" in out.stderr
    assert "s3cret-Value-77aa" not in out.stdout + out.stderr
