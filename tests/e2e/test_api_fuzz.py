"""Fuzzing the API from outside: schemathesis over the OpenAPI with a valid token (0 server errors), and the push
receivers fed random bytes, broken AES and gzip, bad JSON, oversized bodies, replays, wrong accounts and tokens and
lone surrogates (each a 4xx, or `success` for a replay that changes nothing; nothing stored, nothing changed)."""
from __future__ import annotations

import gzip
import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from api.app import create_app
from tests.api_helpers import TOKEN, auth, encrypt_push, environment

pytestmark = pytest.mark.e2e

#: examples per operation: 21 operations × 150 stay near a minute; MSGRELAY_FUZZ_EXAMPLES asks for a deeper run
MAX_EXAMPLES = int(os.environ.get("MSGRELAY_FUZZ_EXAMPLES", "150"))
#: accounts of tests/e2e/conftest.py with a kind and a number each, so generated jobs reach the flow's own rules
KNOWN = {"voice": ("notify", "1380000"), "voicesms": ("voice_sms", "1390000"), "ims": ("ims", "+6142211"),
         "sms": ("sms", "1370000"), "mms": ("mms", "1360000"), "pushed": ("notify", "1350000")}

APP = create_app()
# from the app's own OpenAPI, not from_asgi: that would start the app (and read the accounts file) while pytest
# collects, before the stack has written it; bound to the app, calls go to it in-process
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP
schema.config.generation.update(modes=["positive", "negative"], max_examples=MAX_EXAMPLES)
CALLS: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()
CREATED: list[int] = []


def _real_job(body: dict, account: str, *, plausible: bool) -> st.SearchStrategy[dict]:
    """`body` naming a real account and its kind; `plausible` also gives it real numbers and a short text."""
    kind, prefix = KNOWN[account]
    if not plausible:
        return st.just({**body, "account": account, "kind": kind})
    numbers = st.lists(st.integers(0, 9999).map(lambda n: f"{prefix}{n:04d}"), min_size=1, max_size=3)
    return st.fixed_dictionaries({"recipients": numbers, "content": st.text(min_size=1, max_size=40),
                                  "keep_options": st.booleans()}).map(lambda drawn: {
        **{k: v for k, v in body.items() if k != "options" or drawn["keep_options"]},
        "account": account, "kind": kind, "recipients": drawn["recipients"], "content": drawn["content"]})


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """Two jobs in three name a real account and its kind, half of those with real numbers too, so the fuzz
    reaches the flow's rules and the database rather than stopping at `unknown account`."""
    if context.operation is None or context.operation.label != "POST /v1/jobs" or not isinstance(body, dict):
        return st.just(body)
    return st.one_of(st.just(body), st.sampled_from(sorted(KNOWN)).flatmap(
        lambda account: st.booleans().flatmap(lambda plausible: _real_job(body, account, plausible=plausible))))


@pytest.fixture(scope="module")
def fuzzed(stack) -> Iterator[TestClient]:
    """The app under a bearer token, started (accounts loaded) for the module; the jobs the fuzz created are
    cancelled at the end and what was in flight is let settle, so no later test sees their sends."""
    started = time.monotonic()
    with environment(MSGRELAY_API_TOKEN=TOKEN), TestClient(APP, raise_server_exceptions=False) as client:
        yield client
        for job_id in CREATED:
            client.post(f"/v1/jobs/{job_id}/cancel", headers=auth())
    settle(CREATED)
    print(f"\nschemathesis: {len(CALLS)} operations, {sum(CALLS.values())} calls in "
          f"{time.monotonic() - started:.1f}s; statuses {dict(sorted(STATUSES.items()))}; "
          f"{len(CREATED)} jobs created")


def settle(job_ids: list[int], timeout_s: float = 30) -> None:
    """Wait until no chunk of these jobs is being sent."""
    from sqlalchemy import func, select

    from models import Chunk, session_scope
    from models.statuses import ChunkStatus
    deadline = time.monotonic() + timeout_s
    while job_ids and time.monotonic() < deadline:
        with session_scope() as session:
            busy = session.scalar(select(func.count()).select_from(Chunk).where(
                Chunk.job_id.in_(job_ids), Chunk.status.in_([ChunkStatus.PENDING, ChunkStatus.SENDING])))
        if not busy:
            return
        time.sleep(0.25)


@schema.parametrize()
@hypothesis.settings(deadline=None, database=None, suppress_health_check=list(hypothesis.HealthCheck),
                     max_examples=MAX_EXAMPLES)
def test_no_operation_answers_a_server_error(fuzzed, case):
    # when
    response = case.call(headers=auth())
    # then
    CALLS[case.operation.label] += 1
    STATUSES[response.status_code] += 1
    if case.operation.label == "POST /v1/jobs" and response.status_code == 202:
        CREATED.append(response.json()["id"])
    case.validate_response(response, checks=[not_a_server_error], headers=auth())


# --- the push receivers ------------------------------------------------------------------------------------

PUSH_APP_ID = "EUCP-EMY-TEST-PUSH"
PUSH_SECRET = "abcdef0123456789"
MMS_OPTIONS = {"title": "周末特惠", "sign_name": "【互亿无线】"}


class Pushes:
    """Valid pushes of every kind, each applied once already; the baseline every bad push is compared with."""

    def __init__(self, client: TestClient, emay_token: str) -> None:
        from tests.e2e.conftest import MMS_CALLBACK_TOKEN
        self.client = client
        self.emay = f"/callbacks/emay/pushed/{emay_token}"
        self.ihuyi = {what: f"/callbacks/ihuyi/mms/{MMS_CALLBACK_TOKEN}/{what}" for what in ("receipt", "mo", "template")}
        self.jobs: list[int] = []
        self.valid: dict[str, bytes] = {}

    def path(self, endpoint: str) -> str:
        """The URL of `emay` or an ihuyi push kind."""
        return self.emay if endpoint == "emay" else self.ihuyi[endpoint]

    def post(self, endpoint: str, body: bytes, **headers: str) -> httpx.Response:
        """Push `body` to an endpoint (Emay's with its appId header)."""
        extra = {"appId": PUSH_APP_ID} if endpoint == "emay" else {}
        return self.client.post(self.path(endpoint), content=body, headers={**extra, **headers})

    def snapshot(self) -> tuple:
        """What a push could change: rows of both accounts (report pages, raw reports, inbound, templates) and the
        reports kept in their pages, the baseline jobs' messages, the inbound and templates."""
        from sqlalchemy import select

        from models import InboundMessage, Message, Template, session_scope
        from tests.api_helpers import reports_kept, stored_rows
        with session_scope() as session:
            messages = session.execute(select(Message.id, Message.status, Message.provider_state, Message.reported_at)
                                       .where(Message.job_id.in_(self.jobs)).order_by(Message.id)).all()
            inbound = session.execute(select(InboundMessage.id, InboundMessage.content)
                                      .where(InboundMessage.account == "mms").order_by(InboundMessage.id)).all()
            templates = session.execute(select(Template.template_id, Template.status, Template.message)
                                        .where(Template.account == "mms")).all()
        return [*stored_rows("pushed", "mms"), reports_kept("pushed", "mms")], messages, inbound, templates


def _submitted(client: TestClient, body: dict) -> tuple[int, list[dict]]:
    """Submit a job and wait until every message is submitted; its id and messages."""
    from tests.e2e.conftest import job_view, wait_until
    answer = client.post("/v1/jobs", json=body)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    wait_until(lambda: job_view(job_id)["counts"]["submitted"] == len(body["recipients"]), what=f"job {job_id} sent")
    return job_id, client.get(f"/v1/jobs/{job_id}/messages").json()


@pytest.fixture(scope="module")
def pushes(stack) -> Iterator[Pushes]:
    """A pushed-reports Emay job and an ihuyi MMS job, each made final by one valid push; one valid reply and one
    template audit stored."""
    from msgrelay.accounts import get_accounts
    from tests.e2e.conftest import wait_done
    with environment(MSGRELAY_API_TOKEN=None), TestClient(create_app(), raise_server_exceptions=False) as client:
        p = Pushes(client, get_accounts()["pushed"].callback_token.get_secret_value())
        voice_id, voice = _submitted(client, {"account": "pushed", "kind": "notify", "content": "通知",
                                              "recipients": ["13500000001", "13500000002"]})
        mms_id, mms = _submitted(client, {"account": "mms", "kind": "mms", "content": "周末见",
                                          "recipients": ["13600000001", "13600000002"], "options": MMS_OPTIONS})
        p.jobs = [voice_id, mms_id]
        p.valid["emay"] = json.dumps({"code": "SUCCESS", "data": [
            {"appId": PUSH_APP_ID, "voiceId": m["provider_msg_id"], "customVoiceId": m["custom_id"],
             "state": "SUCCESS" if i == 0 else "FAIL_CALL", "message": "ok", "mobile": m["mobile"]}
            for i, m in enumerate(voice)]}).encode()
        p.valid["receipt"] = json.dumps([
            {"task_id": m["provider_msg_id"].split(":")[0], "phone": m["mobile"], "code": code, "message": code}
            for m, code in zip(mms, ("DELIVERED", "UNDELIV"))]).encode()
        p.valid["mo"] = json.dumps({"task_id": "T1", "phone": "13600000001", "content": "收到，谢谢",
                                    "dest_code": "1069", "receive_time": "2026-11-23 12:00:00"}).encode()
        p.valid["template"] = json.dumps({"template_id": "fuzz-tpl-1", "code": "SUCCESS", "message": "审核通过"}).encode()
        for endpoint, body in p.valid.items():
            answer = p.post("emay" if endpoint == "emay" else endpoint, body)
            assert answer.status_code == 200 and answer.text == "success", (endpoint, answer.text)
        wait_done(voice_id)
        wait_done(mms_id)
        yield p


ENDPOINTS = ["emay", "receipt", "mo", "template"]
_rng = random.Random(8)
RANDOM_BYTES = [bytes(_rng.randrange(256) for _ in range(n)) for n in (1, 15, 16, 17, 32, 64, 1000, 4096)]
BAD_JSON = [b"{", b'{"code":', b"[1, 2]", b'"text"', b"null", b"0", b"true", b'{"data": "x"}', b'{"data": [1]}',
            b"[[]]", b'{"code": "SUCCESS", "data": [null]}', b"\xef\xbb\xbf{", b'[{"task_id": []}]',
            b'{"phone": {"a": 1}, "task_id": 1, "content": 5}', b'{"template_id": null, "code": "SUCCESS"}',
            b'{"data": [{"appId": "EUCP-EMY-TEST-PUSH", "voiceId": [], "state": {}}], "code": "SUCCESS"}',
            b"\x1f\x8b\x08\x00" + b"\x00" * 12, gzip.compress(b'{"code": "SUCCESS", "data": []}')[:-6]]
#: well-formed Emay envelopes whose records are malformed: the decoder keeps each such record as a raw report
#: (`{"unparsed": …}`: a report is handed out once, never lose it); it is stored, matches nothing and changes
#: nothing. (An ihuyi receipt whose `phone` is an object is refused: a push field is text or a number.)
KEPT_RAW = {("emay", BAD_JSON[8]), ("emay", BAD_JSON[10]), ("emay", BAD_JSON[15])}
SURROGATES = {
    "emay": b'{"code":"SUCCESS","data":[{"appId":"EUCP-EMY-TEST-PUSH","voiceId":"v1","customVoiceId":"c\\ud800",'
            b'"state":"SUCCESS","mobile":"13500000001"}]}',
    "receipt": b'[{"task_id":"T\\udfff","phone":"13600000001","code":"DELIVERED"}]',
    "mo": b'{"task_id":"T2","phone":"13600000001","content":"\\ud800 hi"}',
    "template": b'{"template_id":"fuzz-tpl-2","code":"SUCCESS","message":"ok \\udc00"}',
}
NULS = {endpoint: body.replace(b"\\ud800", b"\\u0000").replace(b"\\udfff", b"\\u0000").replace(b"\\udc00", b"\\u0000")
        for endpoint, body in SURROGATES.items()}


def _aes_cases() -> list[tuple[str, bytes]]:
    """Emay bodies that are AES-shaped but wrong: truncated, bad gzip inside, not JSON inside, a gzip bomb."""
    valid = encrypt_push(PUSH_SECRET, b'{"code": "SUCCESS", "data": []}')
    return [
        ("truncated to whole blocks", valid[:16]),
        ("truncated mid-block", valid[:-3]),
        ("one block short", valid[:-16]),
        ("not gzip inside", encrypt_push(PUSH_SECRET, b'{"code": "SUCCESS", "data": []}', gzipped=False)),
        ("truncated gzip inside", encrypt_push(PUSH_SECRET, gzip.compress(b'{"code": "SUCCESS"}')[:-5],
                                               gzipped=False)),
        ("not JSON inside", encrypt_push(PUSH_SECRET, b"\x00\x01 not json")),
        ("a list inside", encrypt_push(PUSH_SECRET, b"[1, 2, 3]")),
        ("another key", encrypt_push("0123456789abcdef", b'{"code": "SUCCESS", "data": []}')),
        ("a gzip bomb", encrypt_push(PUSH_SECRET, b" " * (17 * 1024 * 1024))),
        ("a surrogate inside", encrypt_push(PUSH_SECRET, SURROGATES["emay"])),
    ]


def assert_refused(pushes: Pushes, endpoint: str, body: bytes, *, ignored: bool = False, **headers: str) -> None:
    """The body is a 400 naming no secret (or, when `ignored` may be its fate, `success` for a push that carries
    no record), and nothing is stored or changed."""
    from tests.e2e.conftest import MMS_CALLBACK_TOKEN
    before = pushes.snapshot()
    answer = pushes.post(endpoint, body, **headers)
    assert answer.status_code == 400 or (ignored and (answer.status_code, answer.text) == (200, "success")), \
        (endpoint, body[:80], answer.status_code, answer.text)
    assert MMS_CALLBACK_TOKEN not in answer.text and PUSH_SECRET not in answer.text
    assert pushes.snapshot() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("body", RANDOM_BYTES, ids=lambda b: f"{len(b)}-random-bytes")
def test_random_bytes_are_400_and_change_nothing(pushes, endpoint, body):
    assert_refused(pushes, endpoint, body)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("body", BAD_JSON, ids=range(len(BAD_JSON)))
def test_bad_json_is_400_and_changes_nothing(pushes, endpoint, body):
    if (endpoint, body) in KEPT_RAW:
        # given
        rows, messages, inbound, templates = pushes.snapshot()
        # when
        answer = pushes.post(endpoint, body)
        # then the malformed record is kept as received, in a page of its own and, matching nothing, as a raw row
        # that waits; and that is all
        assert (answer.status_code, answer.text) == (200, "success")
        pages, raw, *others, kept = rows
        assert pushes.snapshot() == ([pages + 1, raw + 1, *others, kept + 1], messages, inbound, templates)
    else:
        # an Emay body that is a JSON object but no report list carries nothing: `success`, nothing stored
        assert_refused(pushes, endpoint, body, ignored=endpoint == "emay" and body.startswith(b"{"))


@pytest.mark.parametrize("what, body", _aes_cases(), ids=lambda x: x if isinstance(x, str) else "")
def test_broken_aes_and_gzip_are_400_and_change_nothing(pushes, what, body):
    assert_refused(pushes, "emay", body)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_lone_surrogates_and_nuls_are_400_naming_the_field(pushes, endpoint):
    # each body is its own endpoint's valid shape with one bad character
    assert_refused(pushes, endpoint, SURROGATES[endpoint])
    assert_refused(pushes, endpoint, NULS[endpoint])
    answer = pushes.post(endpoint, SURROGATES[endpoint])
    assert answer.json()["detail"].startswith("body[0].") and "UTF-8" in answer.json()["detail"]


def test_an_emay_push_from_another_app_id_is_400(pushes):
    assert_refused(pushes, "emay", pushes.valid["emay"], appId="EUCP-EMY-SOMEONE-ELSE")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_replays_answer_success_and_change_nothing(pushes, endpoint):
    # given the state after the push was applied once
    before = pushes.snapshot()
    # when it comes again, twice
    answers = [pushes.post(endpoint, pushes.valid[endpoint]) for _ in range(2)]
    # then
    assert [(a.status_code, a.text) for a in answers] == [(200, "success")] * 2
    rows, messages, inbound, templates = pushes.snapshot()
    assert (messages, inbound, templates) == before[1:]
    # reports are kept exactly as received (an archive), so a replayed receipt adds a page of its records, each
    # matched (no raw row waits), and nothing else; replies and audits add nothing at all
    records = len(json.loads(pushes.valid[endpoint]).get("data", [])) if endpoint == "emay" else \
        len(json.loads(pushes.valid[endpoint])) if endpoint == "receipt" else 0
    pages, *others, kept = before[0]
    assert rows == [pages + (2 if records else 0), *others, kept + 2 * records]


def _wrong_doors(pushes: Pushes) -> list[str]:
    """Push URLs that are not this account's: wrong token, another account's token, wrong vendor, no such kind."""
    from tests.e2e.conftest import CALLBACK_TOKEN, MMS_CALLBACK_TOKEN
    emay_token = pushes.emay.rsplit("/", 1)[1]
    return [
        "/callbacks/emay/pushed/wrong-token", f"/callbacks/emay/voice/{emay_token}", f"/callbacks/emay/nobody/{emay_token}",
        f"/callbacks/emay/mms/{MMS_CALLBACK_TOKEN}", f"/callbacks/emay/voicesms/{CALLBACK_TOKEN}",
        f"/callbacks/emay/pushed/{emay_token}/receipt", f"/callbacks/ihuyi/pushed/{emay_token}/receipt",
        "/callbacks/ihuyi/mms/wrong-token/receipt", f"/callbacks/ihuyi/voice/{CALLBACK_TOKEN}/mo",
        f"/callbacks/ihuyi/mms/{MMS_CALLBACK_TOKEN}/nope", f"/callbacks/ihuyi/mms/{MMS_CALLBACK_TOKEN}",
        f"/callbacks/qyxs/sms/{MMS_CALLBACK_TOKEN}/mo", f"/callbacks/ihuyi/mms/{MMS_CALLBACK_TOKEN[:-1]}/template",
    ]


@pytest.mark.parametrize("door", range(13))
def test_a_wrong_account_or_token_is_404_and_stores_nothing(pushes, door):
    from tests.e2e.conftest import MMS_CALLBACK_TOKEN
    url = _wrong_doors(pushes)[door]
    for endpoint, body in pushes.valid.items():
        before = pushes.snapshot()
        answer = pushes.client.post(url, content=body, headers={"appId": PUSH_APP_ID})
        assert answer.status_code == 404, (url, endpoint, answer.text)
        assert MMS_CALLBACK_TOKEN not in answer.text and pushes.emay.rsplit("/", 1)[1] not in answer.text
        assert pushes.snapshot() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_oversized_push_is_413_and_changes_nothing(pushes, endpoint):
    # given the API with a 64 KiB cap
    with environment(MSGRELAY_MAX_BODY_BYTES=str(64 * 1024)), \
            TestClient(create_app(), raise_server_exceptions=False) as client:
        big = Pushes(client, pushes.emay.rsplit("/", 1)[1])
        big.jobs = pushes.jobs
        before = big.snapshot()
        # when a push of 100 KiB comes, declared or streamed
        body = pushes.valid[endpoint] + b" " * (100 * 1024)
        declared = big.post(endpoint, body)
        streamed = client.post(big.path(endpoint), content=iter([body[:50_000], body[50_000:]]),
                               headers={"appId": PUSH_APP_ID})
        # then
        assert declared.status_code == 413 and streamed.status_code == 413
        assert "65536 bytes" in declared.text and big.snapshot() == before


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["DELIVERED", "SUCCESS", "FAIL", "13600000001", PUSH_APP_ID, "2026-11-23 12:00:00", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["code", "data", "task_id", "phone", "content", "template_id", "message", "appId",
                         "voiceId", "customVoiceId", "state", "mobile", "report_time", "receive_time"]) | st.text(max_size=8),
        inner, max_size=6),
    max_leaves=12)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_fuzzed_pushes_are_never_a_server_error_and_never_touch_the_baseline(pushes, endpoint):
    # given the baseline jobs' messages, the reply and the audit stored
    _, messages, inbound, templates = pushes.snapshot()

    @hypothesis.settings(max_examples=150, deadline=None, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(body=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode()),
                                     JSON_VALUES.map(lambda v: encrypt_push(PUSH_SECRET, json.dumps(v).encode()))))
    def push_anything(body: bytes) -> None:
        answer = pushes.post(endpoint, body)
        assert answer.status_code < 500, (body[:200], answer.text)
        assert answer.status_code in (200, 400) and (answer.status_code != 200 or answer.text == "success")

    # when anything at all is pushed
    push_anything()
    # then nothing already there changed (new junk records may be stored: they match nothing)
    _, after_messages, after_inbound, after_templates = pushes.snapshot()
    assert after_messages == messages
    assert after_inbound[:len(inbound)] == inbound
    assert [t for t in after_templates if t in templates or t[0] == "fuzz-tpl-1"] == templates
