"""POST /_sim/reply over real HTTP: a given mobile answers a given text, handed out by qyxs's inbound query
(<callbox>) or pushed to ihuyi's mo_url (7.2), and read back by msgrelay's own parsers; 404/422; reset."""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import requests
from defusedxml import ElementTree

from msgrelay.cli.frames import sample_frames
from providers.ihuyi.mms import IhuyiMms
from providers.qyxs.sms import QyxsSms
from providers.simulator import EmayApp, SimConfig
from providers.simulator.ihuyi import IhuyiApp
from providers.simulator.qyxs import QyxsUser
from providers.simulator.state import RequestRecord
from providers.values import HttpResponse, Inbound
from tests.simulator.conftest import BEIJING, REPORT_DELAY_S, Receiver, eventually, serving

LOGIN = {"userid": "12", "account": "smsuser", "password": "sms-pass"}
OTHER_LOGIN = {"userid": "13", "account": "reseller", "password": "reseller-pass"}
API_ID, API_KEY = "2RYN7CQHL1M", "sim-ihuyi-key-1"
EMAY_APP = "EUCP-EMY-DDDD-3EEEE"  # a credential of a vendor without replies
MOBILE = "13800138000"
OPT_OUTS = ["退订", "ＴＤ", "TD", "回复TD退订 <&> 谢谢"]  # Chinese, full-width, and text XML must escape
MO_FIELDS = ["task_id", "phone", "content", "dest_code", "send_time", "receive_time"]  # 7.2, in its order
CALLBOX_FIELDS = ["mobile", "taskid", "content", "receivetime"]


class Sim:
    """The simulator serving one qyxs user pair, one ihuyi api_id and one Emay app."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def reply(self, app_id: str, mobile: str, content: str) -> requests.Response:
        return self.http.post(self.url + "/_sim/reply", json={"app_id": app_id, "mobile": mobile, "content": content})

    def control(self, method: str, path: str, **kw) -> dict:
        answer = self.http.request(method, self.url + path, **kw)
        answer.raise_for_status()
        return answer.json()

    def qyxs_inbound(self, login: dict = LOGIN) -> tuple[str, list[Inbound]]:
        """One `action=query` on /callApi.aspx: its XML, and the records as msgrelay's provider reads them."""
        answer = self.http.post(self.url + "/callApi.aspx", data={**login, "action": "query"})
        parsed = QyxsSms.parse_inbound(HttpResponse(answer.status_code, answer.text, dict(answer.headers)))
        return answer.text, parsed

    def qyxs_send(self, mobile: str) -> str:
        answer = self.http.post(self.url + "/sms.aspx", data={**LOGIN, "action": "send", "mobile": mobile,
                                                               "content": "您好", "sendTime": ""})
        return ElementTree.fromstring(answer.text).findtext("taskID")

    def ihuyi_send(self, phone: str) -> str:
        ts, rid = int(time.time()), str(uuid.uuid4())
        sig = hashlib.md5(f"api_id={API_ID}&api_key={API_KEY}&request_id={rid}&timestamp={ts}".encode()).hexdigest()
        body = {"api_id": API_ID, "timestamp": ts, "request_id": rid, "signature": sig, "product_id": 1001,
                "phone": [phone], "sign_name": "【互亿无线】", "title": "周末特惠", "content": sample_frames()}
        answer = self.http.post(self.url + "/mms/v1/batchSend", data=json.dumps(body, ensure_ascii=False).encode(),
                                headers={"Content-Type": "application/json"}).json()
        assert answer["code"] == "OK", answer
        return answer["task_id"]

    def ihuyi_push_to(self, receiver: Receiver, **options) -> None:
        self.control("POST", "/_sim/ihuyi/push", json={"api_id": API_ID, "mo_url": receiver.url, **options})


@pytest.fixture(scope="module")
def sim_server() -> Iterator[Sim]:
    config = SimConfig(credentials={
        "qyxs": {"12": QyxsUser("smsuser", "sms-pass"), "13": QyxsUser("reseller", "reseller-pass")},
        "ihuyi": {API_ID: IhuyiApp(API_KEY)},
        "emay": {EMAY_APP: EmayApp("0123456789abcdef", "voice")},
    }, report_delay_s=REPORT_DELAY_S)
    with serving(config) as url:
        yield Sim(url)


@pytest.fixture
def sim(sim_server: Sim) -> Iterator[Sim]:
    sim_server.control("POST", "/_sim/reset")
    yield sim_server
    sim_server.control("POST", "/_sim/reset")  # stops the push thread


def mo_pushes(receiver: Receiver) -> list[Inbound]:
    """Every reply pushed to `receiver`, decoded by msgrelay's ihuyi push decoder."""
    decode = IhuyiMms.pushes["mo"].decode
    return [item for headers, body in receiver.pushes for item in decode(None, headers, body)]


def assert_received_now(received_at: datetime | None) -> None:
    assert received_at is not None  # an aware datetime: Beijing time read as such
    assert abs(received_at - datetime.now(BEIJING)) < timedelta(seconds=30)


# ---- qyxs: handed out once by the inbound query -------------------------------------------------------
@pytest.mark.parametrize("content", OPT_OUTS)
def test_qyxs_reply_is_handed_out_once_by_the_inbound_query(sim: Sim, content: str) -> None:
    # given
    answer = sim.reply("12", MOBILE, content)
    assert answer.status_code == 200
    assert answer.json() == {"app_id": "12", "vendor": "qyxs", "reply": answer.json()["reply"]}
    # when
    xml, [inbound] = sim.qyxs_inbound()
    # then
    assert (inbound.mobile, inbound.content, inbound.task_id) == (MOBILE, content, None)  # no send: empty taskid
    assert_received_now(inbound.received_at)
    [box] = ElementTree.fromstring(xml).findall("callbox")
    assert [child.tag for child in box] == CALLBOX_FIELDS  # the shape of the simulator's own replies
    assert inbound.raw == answer.json()["reply"]
    assert sim.qyxs_inbound()[1] == []  # handed out once
    assert sim.qyxs_inbound(OTHER_LOGIN)[1] == []  # and to that userid only


def test_qyxs_reply_names_the_latest_send_to_that_mobile_and_keeps_the_order(sim: Sim) -> None:
    # given
    sim.qyxs_send("13900000001")
    task = sim.qyxs_send(f"13900000002,{MOBILE}")
    # when
    for content in ("退订", "ＴＤ"):
        sim.reply("12", MOBILE, content)
    sim.reply("12", "13700000000", "TD")  # never sent to: no task
    # then
    [first, second, stranger] = sim.qyxs_inbound()[1]  # neither sent mobile draws a reply of its own (seed 0)
    assert [(i.content, i.task_id) for i in (first, second)] == [("退订", task), ("ＴＤ", task)]
    assert stranger.task_id is None


def test_qyxs_reply_does_not_displace_the_drawn_replies(sim: Sim) -> None:
    # given: a send whose ~5% delivered recipients reply by themselves
    mobiles = [f"139{i:08d}" for i in range(1000)]
    sim.qyxs_send(",".join(mobiles))
    sim.reply("12", MOBILE, "退订")
    time.sleep(REPORT_DELAY_S + 0.1)
    # when
    inbound = sim.qyxs_inbound()[1]
    # then
    assert inbound[-1].mobile == MOBILE and inbound[-1].content == "退订"
    assert 0 < len(inbound) - 1 and {i.mobile for i in inbound[:-1]} <= set(mobiles)


# ---- ihuyi: pushed to the mo_url --------------------------------------------------------------------
@pytest.mark.parametrize("content", OPT_OUTS)
def test_ihuyi_reply_is_pushed_to_the_mo_url_and_decoded(sim: Sim, receiver_factory, content: str) -> None:
    # given
    receiver = receiver_factory()
    sim.ihuyi_push_to(receiver)
    # when
    answer = sim.reply(API_ID, MOBILE, content)
    # then
    assert answer.status_code == 200 and answer.json()["vendor"] == "ihuyi"
    receiver.wait(1)
    headers, body = receiver.pushes[0]
    assert headers["Content-Type"].startswith("application/json")
    [record] = json.loads(body)
    assert list(record) == MO_FIELDS and record == answer.json()["reply"]
    [inbound] = mo_pushes(receiver)
    assert (inbound.mobile, inbound.content, inbound.task_id) == (MOBILE, content, None)
    assert inbound.dest_code == "10690" + MOBILE[-4:]
    assert_received_now(inbound.received_at)


def test_ihuyi_reply_names_the_mms_it_answers(sim: Sim, receiver_factory) -> None:
    # given
    task = sim.ihuyi_send(MOBILE)
    receiver = receiver_factory()
    sim.ihuyi_push_to(receiver)  # replies only: receipts stay for nobody
    # when
    sim.reply(API_ID, MOBILE, "TD")
    # then
    receiver.wait(1)
    [record] = json.loads(receiver.pushes[0][1])
    assert record["task_id"] == task and record["send_time"]
    assert [i.task_id for i in mo_pushes(receiver)] == [task]


def test_ihuyi_reply_waits_for_a_mo_url(sim: Sim, receiver_factory) -> None:
    # given
    sim.reply(API_ID, MOBILE, "退订")
    assert sim.control("GET", "/_sim/stats")["replies_waiting"] == 1
    receiver = receiver_factory()
    # when
    sim.ihuyi_push_to(receiver)
    # then
    receiver.wait(1)
    assert [i.content for i in mo_pushes(receiver)] == ["退订"]
    assert sim.control("GET", "/_sim/stats")["replies_waiting"] == 0


@pytest.mark.parametrize("answers, attempts, delivered", [
    (["fail", "fail", "success"], 3, 1),
    (["fail"], 3, 0),  # ihuyi pushes at most 3 times
])
def test_ihuyi_reply_push_is_retried_like_every_push(sim: Sim, receiver_factory, answers, attempts, delivered):
    # given
    receiver = receiver_factory(*answers)
    sim.ihuyi_push_to(receiver, retry_s=0.05)
    # when
    sim.reply(API_ID, MOBILE, "TD")
    # then
    stats = eventually(lambda: (s := sim.control("GET", "/_sim/ihuyi/stats")).keys() & {"mo_delivered", "mo_failed"}
                       and s, "the push settled")
    assert len(receiver.pushes) == attempts == stats["mo_attempts"]
    assert stats.get("mo_delivered", 0) == delivered and stats.get("mo_failed", 0) == 1 - delivered
    assert len({body for _, body in receiver.pushes}) == 1  # the same reply each time


# ---- refusals and reset ---------------------------------------------------------------------------
@pytest.mark.parametrize("body, status, names", [
    ({"app_id": "nobody", "mobile": MOBILE, "content": "TD"}, 404, "nobody"),
    ({"app_id": EMAY_APP, "mobile": MOBILE, "content": "TD"}, 404, EMAY_APP),  # Emay takes no replies
    ({"mobile": MOBILE, "content": "TD"}, 422, "app_id"),
    ({"app_id": "12", "content": "TD"}, 422, "mobile"),
    ({"app_id": "12", "mobile": "", "content": "TD"}, 422, "mobile"),
    ({"app_id": API_ID, "mobile": "  ", "content": "TD"}, 422, "mobile"),
    ({"app_id": "12", "mobile": MOBILE}, 422, "content"),
    ({"app_id": API_ID, "mobile": MOBILE, "content": ""}, 422, "content"),
    ({"app_id": "12", "mobile": 13800138000, "content": "TD"}, 422, "mobile"),
    ({"app_id": "nobody", "mobile": MOBILE}, 422, "content"),  # a malformed body is refused before the lookup
])
def test_refusals(sim: Sim, body: dict, status: int, names: str) -> None:
    answer = sim.http.post(sim.url + "/_sim/reply", json=body)
    assert answer.status_code == status
    assert names in answer.json()["detail"]
    assert sim.control("GET", "/_sim/stats")["replies_waiting"] == 0


def test_reset_forgets_injected_replies(sim: Sim, receiver_factory) -> None:
    # given
    sim.reply("12", MOBILE, "退订")
    sim.reply(API_ID, MOBILE, "退订")
    # when
    sim.control("POST", "/_sim/reset")
    # then
    assert sim.qyxs_inbound()[1] == []
    assert sim.control("GET", "/_sim/stats")["replies_waiting"] == 0
    sim.reply(API_ID, "13700000000", "TD")  # a marker injected after the reset: only it is pushed
    receiver = receiver_factory()
    sim.ihuyi_push_to(receiver)
    receiver.wait(1)
    assert [(i.mobile, i.content) for i in mo_pushes(receiver)] == [("13700000000", "TD")]


def test_reply_makers_shape_the_documents_records() -> None:
    from providers.simulator.ihuyi.push import reply as ihuyi_reply
    from providers.simulator.qyxs import reply as qyxs_reply, task_id
    record = RequestRecord(1, "/sms.aspx", "12", "qyxs", [MOBILE], None, ["10"], 7, 42, 0.0, 0.0, "")
    at = datetime(2026, 5, 1, 12, 0, 0, tzinfo=BEIJING).timestamp()
    assert qyxs_reply(record, MOBILE, "退订", at) == {
        "mobile": MOBILE, "taskid": task_id(record), "content": "退订", "receivetime": "2026-05-01 12:00:00"}
    assert ihuyi_reply(None, MOBILE, "TD", at) == {
        "task_id": "", "phone": MOBILE, "content": "TD", "dest_code": "10690" + MOBILE[-4:], "send_time": "",
        "receive_time": "2026-05-01 12:00:00"}
