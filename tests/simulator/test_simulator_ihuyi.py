"""The ihuyi MMS simulator over real HTTP: signing, timestamp window, request_id dedup, limits, content
rules, templates and their audits, balances, faults, and pushes retried like ihuyi."""
from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from msgrelay.cli.frames import sample_frames, sample_png
from providers.simulator import SimConfig
from providers.simulator.ihuyi import IhuyiApp
from tests.simulator.conftest import HELD_LONG_S, eventually, serving

API_ID, API_KEY = "2RYN7CQHL1M", "sim-ihuyi-key-1"
OTHER_ID = "3ABCDEFGHIJ"
REPORT_DELAY_S = 0.3
FRAMES = sample_frames()
PHONES = ["18800000000", "18800000001"]  # the document's example phones (3.3)


def signed(api_id: str = API_ID, key: str = API_KEY, *, skew_s: float = 0, request_id: str | None = None,
           **fields) -> dict:
    """The public parameters, signed here independently of the simulator, plus `fields`."""
    ts = int(time.time() + skew_s)
    rid = request_id or str(uuid.uuid4())
    sig = hashlib.md5(f"api_id={api_id}&api_key={key}&request_id={rid}&timestamp={ts}".encode()).hexdigest()
    return {"api_id": api_id, "timestamp": ts, "request_id": rid, "signature": sig, **fields}


def send_body(**changes) -> dict:
    body = {"product_id": 1001, "phone": PHONES, "sign_name": "【互亿无线】", "title": "周末特惠", "content": FRAMES}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


class Ihuyi:
    def __init__(self, url: str) -> None:
        self.url = url

    def post(self, path: str, body: dict | list | str) -> dict:
        data = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        return requests.post(self.url + path, data=data.encode(), timeout=10,
                             headers={"Content-Type": "application/json"}).json()

    def send(self, **fields) -> dict:
        return self.post("/mms/v1/batchSend", signed(**send_body(**fields)))

    def control(self, method: str, path: str, **kw) -> dict | list:
        answer = requests.request(method, self.url + path, timeout=10, **kw)
        answer.raise_for_status()
        return answer.json()


@pytest.fixture(scope="module")
def server() -> Iterator[Ihuyi]:
    apps = {API_ID: IhuyiApp(API_KEY), OTHER_ID: IhuyiApp("other-key", balance=5)}
    config = SimConfig(credentials={"ihuyi": apps}, report_delay_s=REPORT_DELAY_S)
    with serving(config) as url:
        yield Ihuyi(url)


@pytest.fixture
def ihuyi(server: Ihuyi) -> Iterator[Ihuyi]:
    server.control("POST", "/_sim/reset")
    yield server
    server.control("POST", "/_sim/reset")


def test_the_documents_request_is_accepted_with_a_task_id(ihuyi):
    answer = ihuyi.send()
    assert answer["code"] == "OK" and answer["task_id"]
    [record] = ihuyi.control("GET", "/_sim/requests")
    assert record["endpoint"] == "/mms/v1/batchSend" and [r["mobile"] for r in record["recipients"]] == PHONES


@pytest.mark.parametrize("mutate, code", [
    (lambda b: {**b, "signature": b["signature"].upper()}, "ERROR_SIGNATURE"),  # 32 lowercase hex, strictly
    (lambda b: {**b, "signature": hashlib.md5(b"x").hexdigest()}, "ERROR_SIGNATURE"),
    (lambda b: {**b, "api_key": API_KEY}, "ERROR_PARAMS"),  # the key is signed, never sent
    (lambda b: {k: v for k, v in b.items() if k != "request_id"}, "ERROR_PARAMS"),
    (lambda b: {**b, "timestamp": True}, "ERROR_PARAMS"),
    (lambda b: {**b, "timestamp": b["timestamp"] * 1000}, "ERROR_TIMESTAMP"),  # milliseconds: 13 digits
    (lambda b: {**b, "api_id": "NOSUCHAPI"}, "ERROR_API_ID"),
])
def test_public_parameters_are_checked_strictly(ihuyi, mutate, code):
    assert ihuyi.post("/mms/v1/batchSend", mutate(signed(**send_body())))["code"] == code
    assert ihuyi.control("GET", "/_sim/requests") == []


@pytest.mark.parametrize("skew_s, ok", [(-55, True), (55, True), (-70, False), (70, False)])
def test_timestamp_window_is_60_seconds(ihuyi, skew_s, ok):
    answer = ihuyi.post("/mms/v1/batchSend", signed(skew_s=skew_s, **send_body()))
    assert answer["code"] == ("OK" if ok else "ERROR_TIMESTAMP")


def test_a_string_timestamp_of_10_digits_is_accepted(ihuyi):
    body = signed(**send_body())
    ts = str(body["timestamp"])
    body.update(timestamp=ts, signature=hashlib.md5(
        f"api_id={API_ID}&api_key={API_KEY}&request_id={body['request_id']}&timestamp={ts}".encode()).hexdigest())
    assert ihuyi.post("/mms/v1/batchSend", body)["code"] == "OK"


def test_a_repeated_request_id_is_answered_like_the_first_and_not_sent_again(ihuyi):
    first = ihuyi.send(request_id="rid-1")
    time.sleep(1.1)  # a later retry: new timestamp and signature, same request_id
    again = ihuyi.send(request_id="rid-1")
    other = ihuyi.send(request_id="rid-2")
    assert first["code"] == again["code"] == "OK" and again["task_id"] == first["task_id"]
    assert other["task_id"] != first["task_id"]
    assert len(ihuyi.control("GET", "/_sim/requests")) == 2
    assert ihuyi.control("GET", "/_sim/stats")["duplicates"] == 2  # rid-2 resent the same phones: counted
    log = ihuyi.control("GET", "/_sim/ihuyi/requests")
    assert [(e["request_id"], e["duplicate"]) for e in log] == [("rid-1", False), ("rid-1", True), ("rid-2", False)]
    assert ihuyi.control("GET", "/_sim/ihuyi/stats")["duplicates_answered"] == 1


def test_a_refused_request_id_can_be_used_again(ihuyi):
    assert ihuyi.send(request_id="rid-3", title=None)["code"] == "ERROR_TITLE"
    assert ihuyi.send(request_id="rid-3")["code"] == "OK"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


PNG = {"con_type": "image", "ext_type": "png", "data": b64(sample_png())}
TEXT = {"con_type": "text", "ext_type": "txt", "data": "你好"}


@pytest.mark.parametrize("changes, code", [
    ({"phone": []}, "ERROR_PHONE_NUMBER"),
    ({"phone": [f"138{i:08d}" for i in range(10_001)]}, "ERROR_PHONE_NUMBER"),
    ({"phone": "18800000000"}, "ERROR_PHONE_NUMBER"),
    ({"phone": ["18800000000", "12800000000"]}, "ERROR_PHONE"),
    ({"product_id": 9999}, "ERROR_PRODUCT_ID"),
    ({"product_id": "1001"}, "ERROR_PRODUCT_ID"),
    ({"title": None}, "ERROR_TITLE"),
    ({"sign_name": None}, "ERROR_SIGN_NAME"),
    ({"sign_name": "互亿无线"}, "ERROR_SIGN_NAME"),
    ({"content": [[TEXT, PNG, {**PNG, "ext_type": "png"}]]}, "ERROR_CONTENT"),  # two media in one frame
    ({"content": [[TEXT, dict(TEXT)]]}, "ERROR_CONTENT"),  # two texts
    ({"content": [[{**PNG, "ext_type": "exe"}]]}, "ERROR_CONTENT"),
    ({"content": [[{**PNG, "ext_type": "jpg"}]]}, "ERROR_CONTENT"),  # png bytes called jpg
    ({"content": [[{**PNG, "con_type": "video"}]]}, "ERROR_CONTENT"),
    ({"content": [[{**PNG, "data": "这是base64内容"}]]}, "ERROR_CONTENT"),  # the document's placeholder
    ({"content": [[{**TEXT, "data": "字" * 110_000}]]}, "ERROR_CONTENT"),  # over 300 KB
    ({"content": None}, "ERROR_TEMPLATE"),  # neither content nor template
    ({"content": None, "template_id": 1}, "ERROR_TEMPLATE"),
    ({"send_time": "2020/08/26 16:08"}, "ERROR_SEND_TIME"),
])
def test_batch_send_rules(ihuyi, changes, code):
    assert ihuyi.send(**changes)["code"] == code
    assert ihuyi.control("GET", "/_sim/requests") == []
    assert ihuyi.control("GET", "/_sim/stats")["refused"] == {code: 1}


def test_10000_phones_is_the_limit_and_the_size_cap_is_settable(ihuyi):
    assert ihuyi.send(phone=[f"138{i:08d}" for i in range(10_000)])["code"] == "OK"
    big = [[{**TEXT, "data": "字" * 110_000}]]
    ihuyi.control("POST", "/_sim/ihuyi/limits", json={"max_kb": 400})
    assert ihuyi.send(content=big, phone=["13900000000"])["code"] == "OK"


def test_bad_mobiles_fault_and_balance(ihuyi):
    ihuyi.control("POST", "/_sim/faults", json={"bad_mobiles": ["18800000001"]})
    assert ihuyi.send()["code"] == "ERROR_PHONE"
    body = signed(OTHER_ID, "other-key", **send_body(phone=[f"139{i:08d}" for i in range(6)]))
    assert ihuyi.post("/mms/v1/batchSend", body)["code"] == "ERROR_BALANCE"  # 5 left, 6 phones


def test_balance_lists_every_product_with_its_name(ihuyi):
    ihuyi.control("POST", "/_sim/ihuyi/product", json={"api_id": API_ID, "product_id": 1020,
                                                       "product_name": "营销彩信-商超类"})
    ihuyi.send()
    answer = ihuyi.post("/mms/v1/balance", signed())
    assert answer["code"] == "OK"
    assert answer["data"] == [{"product_id": 1001, "product_name": "彩信通知", "balance": 999999998},
                              {"product_id": 1020, "product_name": "营销彩信-商超类", "balance": 999999998}]
    assert ihuyi.post("/mms/v1/balance", signed(key="wrong"))["code"] == "ERROR_SIGNATURE"


def test_template_created_pending_then_audited_and_pushed(ihuyi, receiver_factory):
    hook = receiver_factory()
    ihuyi.control("POST", "/_sim/ihuyi/push", json={"api_id": API_ID, "template_url": hook.url})
    made = ihuyi.post("/mms/v1/templateCreate", signed(title="双十一", content=FRAMES, sign_name="【互亿无线】",
                                                       purpose="会员营销"))
    bad = ihuyi.post("/mms/v1/templateCreate", signed(title="REJECT me", content=FRAMES, sign_name="【互亿无线】"))
    assert made["code"] == bad["code"] == "OK" and made["template_id"] != bad["template_id"]
    assert ihuyi.send(content=None, template_id=made["template_id"])["code"] == "ERROR_TEMPLATE"  # still pending
    hook.wait(2)
    pushed = {json.loads(body)["template_id"]: json.loads(body) for _, body in hook.pushes}
    assert pushed[made["template_id"]]["code"] == "SUCCESS" and pushed[bad["template_id"]]["code"] == "FAIL"
    assert ihuyi.send(content=None, template_id=made["template_id"], title=None, sign_name=None)["code"] == "OK"
    assert ihuyi.send(content=None, template_id=bad["template_id"])["code"] == "ERROR_TEMPLATE"
    # an operator's verdict replaces the automatic one and is pushed again
    ihuyi.control("POST", "/_sim/ihuyi/audit", json={"api_id": API_ID, "template_id": made["template_id"],
                                                      "code": "FAIL", "message": "图片违规"})
    hook.wait(3)
    assert json.loads(hook.pushes[2][1]) == {"template_id": made["template_id"], "code": "FAIL", "message": "图片违规"}


@pytest.mark.parametrize("changes", [{"title": ""}, {"sign_name": "互亿无线"}, {"content": [[PNG, dict(PNG)]]}])
def test_template_rules(ihuyi, changes):
    body = {"title": "t", "content": FRAMES, "sign_name": "【互亿无线】", **changes}
    assert ihuyi.post("/mms/v1/templateCreate", signed(**body))["code"] != "OK"


def test_receipts_and_replies_are_pushed_after_the_delay(ihuyi, receiver_factory):
    receipts, replies = receiver_factory(), receiver_factory()
    ihuyi.control("POST", "/_sim/ihuyi/push", json={"api_id": API_ID, "receipt_url": receipts.url,
                                                     "mo_url": replies.url, "mo_rate": 1.0})
    phones = [f"137{i:08d}" for i in range(40)]
    started = time.monotonic()
    task_id = ihuyi.send(phone=phones)["task_id"]
    receipts.wait(1)
    assert time.monotonic() - started >= REPORT_DELAY_S
    pushed = json.loads(receipts.pushes[0][1])
    assert sorted(r["phone"] for r in pushed) == phones and {r["task_id"] for r in pushed} == {task_id}
    assert set(pushed[0]) == {"task_id", "phone", "code", "message", "send_time", "report_time"}
    delivered = sorted(r["phone"] for r in pushed if r["code"] == "DELIVERED")
    assert 0 < len(delivered) < 40
    replies.wait(1)
    mo = json.loads(replies.pushes[0][1])
    assert sorted(m["phone"] for m in mo) == delivered
    assert set(mo[0]) == {"task_id", "phone", "content", "dest_code", "send_time", "receive_time"}
    assert receipts.pushes[0][0]["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("answers, attempts, delivered", [
    (["fail", "fail", "success"], 3, 1),
    (["fail"], 3, 0),  # ihuyi pushes a receipt at most 3 times
])
def test_a_push_is_retried_until_success_at_most_3_times(ihuyi, receiver_factory, answers, attempts, delivered):
    hook = receiver_factory(*answers)
    ihuyi.control("POST", "/_sim/ihuyi/push", json={"api_id": API_ID, "receipt_url": hook.url, "retry_s": 0.05})
    ihuyi.send()

    def settled() -> dict | None:  # the pusher is done with the batch once it counted it delivered or given up
        stats = ihuyi.control("GET", "/_sim/ihuyi/stats")
        return stats if {"receipt_delivered", "receipt_failed"} & stats.keys() else None

    stats = eventually(settled, "the push settled")
    assert len(hook.pushes) == attempts == stats["receipt_attempts"]
    assert stats.get("receipt_delivered", 0) == delivered and stats.get("receipt_failed", 0) == 1 - delivered


def test_repeat_delivers_each_push_twice(ihuyi, receiver_factory):
    hook = receiver_factory()
    ihuyi.control("POST", "/_sim/ihuyi/push", json={"api_id": API_ID, "receipt_url": hook.url, "repeat": 2})
    ihuyi.send()
    hook.wait(2)
    assert hook.pushes[0][1] == hook.pushes[1][1]


def test_faults_5xx_and_stall_after_accept_then_the_retry_is_answered_at_once(ihuyi):
    ihuyi.control("POST", "/_sim/faults", json={"error_5xx_rate": 1.0})
    assert requests.post(ihuyi.url + "/mms/v1/batchSend", json=signed(**send_body()), timeout=5).status_code == 503
    ihuyi.control("POST", "/_sim/faults", json={"stall_after_accept_rate": 1.0, "stall_s": HELD_LONG_S})
    body = send_body(request_id="stalled")
    with pytest.raises(requests.ReadTimeout):
        requests.post(ihuyi.url + "/mms/v1/batchSend", json=signed(**body), timeout=1)
    again = ihuyi.send(**body)  # same request_id: the first answer, no stall, nothing sent again
    # answered while the first one's answer is still held (a stalled retry would have timed out instead)
    [record] = ihuyi.control("GET", "/_sim/requests")
    [stalled] = ihuyi.control("GET", "/_sim/stats")["answers_held"]
    assert again == {"code": "OK", "message": "提交成功", "task_id": record["recipients"][0]["provider_id"]}
    assert stalled["record_ids"] == [record["id"]]
    assert [r["duplicate"] for r in ihuyi.control("GET", "/_sim/ihuyi/requests")] == [False, True]


def test_reset_forgets_templates_dedup_and_push_targets(ihuyi, receiver_factory):
    hook = receiver_factory()
    ihuyi.control("POST", "/_sim/ihuyi/push", json={"api_id": API_ID, "receipt_url": hook.url})
    ihuyi.send(request_id="before-reset")
    ihuyi.post("/mms/v1/templateCreate", signed(title="t", content=FRAMES, sign_name="【互亿无线】"))
    ihuyi.control("POST", "/_sim/reset")
    assert ihuyi.control("GET", "/_sim/ihuyi/templates") == {}
    assert ihuyi.control("GET", "/_sim/ihuyi/requests") == []
    assert ihuyi.send(request_id="before-reset")["code"] == "OK"
    assert len(ihuyi.control("GET", "/_sim/requests")) == 1  # sent again: the dedup memory was reset too
    with pytest.raises(requests.HTTPError):
        ihuyi.control("POST", "/_sim/ihuyi/push", json={"api_id": "NOSUCHAPI", "receipt_url": hook.url})
