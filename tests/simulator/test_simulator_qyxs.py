"""The 企业信使 simulator over real HTTP: logins, every documented text, XML shapes, reports, replies, faults."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from defusedxml import ElementTree

from providers.simulator import SimConfig
from providers.simulator.qyxs import REPLY_PERCENT, QyxsUser, replies_of
from tests.simulator.conftest import REPORT_DELAY_S, SimClient, serving

LOGIN = {"userid": "12", "account": "smsuser", "password": "sms-pass"}
OTHER = {"userid": "13", "account": "reseller", "password": "reseller-pass"}


def mobiles(n: int, prefix: str = "139") -> list[str]:
    return [f"{prefix}{i:08d}" for i in range(n)]


class Qyxs(SimClient):
    def call(self, path: str, login: dict = LOGIN, **params: str) -> dict:
        """POST a form; the answer's <returnsms> children (and their boxes) as plain data."""
        answer = self.http.post(self.url + path, data={**login, **params})
        assert answer.headers["content-type"].startswith("text/xml")
        root = ElementTree.fromstring(answer.text)
        assert root.tag == "returnsms"
        out: dict = {"boxes": []}
        for child in root:
            if len(child):
                out["boxes"].append({c.tag: c.text or "" for c in child})
                out.setdefault("box", child.tag)
            else:
                out[child.tag] = child.text or ""
        return out

    def send(self, login: dict = LOGIN, **params: str) -> dict:
        return self.call("/sms.aspx", login, **{"action": "send", "content": "您好", "sendTime": "", **params})


@pytest.fixture(scope="module")
def qyxs_server() -> Iterator[Qyxs]:
    users = {"12": QyxsUser("smsuser", "sms-pass"), "13": QyxsUser("reseller", "reseller-pass", balance=5)}
    with serving(SimConfig(credentials={"qyxs": users}, report_delay_s=REPORT_DELAY_S)) as url:
        yield Qyxs(url)


@pytest.fixture
def qyxs(qyxs_server: Qyxs) -> Qyxs:
    return qyxs_server.reset()


def test_send_answers_chapter_ones_xml(qyxs: Qyxs) -> None:
    answer = qyxs.send(mobile="15023239810,13527576163", checkcontent="0")
    assert answer["returnstatus"] == "Success" and answer["message"] == "ok"
    assert answer["successCounts"] == "2" and answer["taskID"].isdigit() and answer["remainpoint"].isdigit()
    sent = qyxs.control("GET", "/_sim/requests").json()
    assert sent[0]["endpoint"] == "/sms.aspx" and sent[0]["app_id"] == "12"
    assert [r["mobile"] for r in sent[0]["recipients"]] == ["15023239810", "13527576163"]


@pytest.mark.parametrize(("login", "params", "message"), [
    ({**LOGIN, "password": ""}, {}, "用户名或密码不能为空"),
    ({**LOGIN, "password": "wrong"}, {}, "用户名或密码错误"),
    ({**LOGIN, "account": "someone"}, {}, "用户名或密码错误"),
    ({**LOGIN, "userid": "99"}, {}, "用户名或密码错误"),
    (LOGIN, {"mobile": ""}, "短信号码不能为空"),
    (LOGIN, {"mobile": "1502323981,abc"}, "短信号码不能为空"),  # no valid number left
    (LOGIN, {"mobile": "15023239810", "content": ""}, "短信内容不能为空"),
    (LOGIN, {"mobile": "15023239810", "content": "代开发票", "checkcontent": "1"}, "包含非法字符：代开发票"),
    (LOGIN, {"mobile": "15023239810", "sendTime": "20211224090810"}, "其他错误：定时发送时间格式错误"),
    (LOGIN, {"mobile": ",".join(mobiles(1001))}, "其他错误：一次最多提交1000个号码"),
    (OTHER, {"mobile": ",".join(mobiles(6))}, "对不起，您当前要发送的量大于您当前余额"),
])
def test_send_refusals_use_the_documents_texts(qyxs: Qyxs, login: dict, params: dict, message: str) -> None:
    answer = qyxs.send(login, **{"mobile": "15023239810", **params})
    assert answer["returnstatus"] == "Faild" and answer["message"] == message
    assert qyxs.control("GET", "/_sim/requests").json() == []


def test_keyword_hit_is_sent_when_checkcontent_is_off(qyxs: Qyxs) -> None:
    assert qyxs.send(mobile="15023239810", content="代开发票", checkcontent="0")["returnstatus"] == "Success"


def test_malformed_numbers_are_dropped_from_success_counts(qyxs: Qyxs) -> None:
    assert qyxs.send(mobile="15023239810,12345,13527576163")["successCounts"] == "2"


def test_overage_and_checkkeyword(qyxs: Qyxs) -> None:
    qyxs.send(mobile="15023239810")
    balance = qyxs.call("/sms.aspx", action="overage")
    assert balance["returnstatus"] in ("Success", "Sucess") and balance["payinfo"] == "预付费"
    assert int(balance["sendTotal"]) - int(balance["overage"]) == 1
    assert qyxs.call("/sms.aspx", action="checkkeyword", content="您好")["message"] == "未包含非法字符"
    assert qyxs.call("/sms.aspx", action="checkkeyword", content="买六合彩")["message"] == "包含非法字符：六合彩"
    wrong = qyxs.call("/sms.aspx", {**LOGIN, "password": "x"}, action="checkkeyword", content="您好")
    assert wrong["message"] == "用户名或密码错误"


@pytest.mark.parametrize("path", ["/statusApi.aspx", "/callApi.aspx"])
@pytest.mark.parametrize(("login", "action", "error"), [
    ({**LOGIN, "password": ""}, "query", "1"), ({**LOGIN, "password": "x"}, "query", "2"), (LOGIN, "list", "4"),
])
def test_query_errors_are_errorstatus(qyxs: Qyxs, path: str, login: dict, action: str, error: str) -> None:
    answer = qyxs.call(path, login, action=action)
    assert answer["box"] == "errorstatus" and answer["boxes"][0]["error"] == error


def test_reports_are_statusboxes_handed_out_once(qyxs: Qyxs) -> None:
    task = qyxs.send(mobile=",".join(mobiles(600)))["taskID"]
    time.sleep(REPORT_DELAY_S + 0.1)
    first = qyxs.call("/statusApi.aspx", action="query")
    second = qyxs.call("/statusApi.aspx", action="query")
    third = qyxs.call("/statusApi.aspx", action="query")
    assert first["box"] == "statusbox"
    assert (len(first["boxes"]), len(second["boxes"]), len(third["boxes"])) == (500, 100, 0)
    box = first["boxes"][0]
    assert set(box) == {"mobile", "taskid", "status", "receivetime", "errorcode"} and box["taskid"] == task
    states = {b["mobile"]: b["status"] for b in first["boxes"] + second["boxes"]}
    assert set(states.values()) == {"10", "20"}
    outcomes = qyxs.control("GET", "/_sim/outcomes").json()["counts"]
    assert outcomes == {s: list(states.values()).count(s) for s in ("10", "20")}
    assert qyxs.call("/statusApi.aspx", OTHER, action="query")["boxes"] == []  # another user's queue


def test_delivered_recipients_reply_once(qyxs: Qyxs) -> None:
    qyxs.send(mobile=",".join(mobiles(1000)))
    assert qyxs.call("/callApi.aspx", action="query")["boxes"] == []  # nobody has the message yet
    time.sleep(REPORT_DELAY_S + 0.1)
    calls = qyxs.call("/callApi.aspx", action="query")["boxes"]
    assert 0 < len(calls) < 1000 * REPLY_PERCENT * 2 / 100
    assert set(calls[0]) == {"mobile", "taskid", "content", "receivetime"}
    assert qyxs.call("/callApi.aspx", action="query")["boxes"] == []
    record = qyxs.control("GET", "/_sim/requests").json()[0]
    assert {c["mobile"] for c in calls} <= {r["mobile"] for r in record["recipients"]}


def test_reset_forgets_replies(qyxs: Qyxs) -> None:
    qyxs.send(mobile=",".join(mobiles(1000)))
    time.sleep(REPORT_DELAY_S + 0.1)
    qyxs.control("POST", "/_sim/reset")
    assert qyxs.call("/callApi.aspx", action="query")["boxes"] == []


def test_password_change_and_duplicates_by_mobile(qyxs: Qyxs) -> None:
    qyxs.control("POST", "/_sim/secret", json={"app_id": "12", "secret_key": "other"})
    assert qyxs.send(mobile="15023239810")["message"] == "用户名或密码错误"
    qyxs.control("POST", "/_sim/reset")
    qyxs.send(mobile="15023239810,13527576163")
    qyxs.send(mobile="15023239810")
    qyxs.send(OTHER, mobile="15023239810")  # another user sending the same mobile is no duplicate
    assert qyxs.control("GET", "/_sim/stats").json()["duplicates"] == 1


def test_faults_5xx_and_stall(qyxs: Qyxs) -> None:
    qyxs.control("POST", "/_sim/faults", json={"error_5xx_rate": 1.0})
    assert qyxs.http.post(qyxs.url + "/sms.aspx", data={**LOGIN, "action": "send"}).status_code == 503
    qyxs.control("POST", "/_sim/faults", json={"stall_after_accept_rate": 1.0, "stall_s": 2})
    with pytest.raises(requests.ReadTimeout):
        qyxs.http.post(qyxs.url + "/sms.aspx", data={**LOGIN, "action": "send", "mobile": "15023239810",
                                                     "content": "hi"}, timeout=0.5)
    assert len(qyxs.control("GET", "/_sim/requests").json()) == 1


def test_reply_fraction_is_deterministic() -> None:
    from providers.simulator.state import RequestRecord
    record = RequestRecord(1, "/sms.aspx", "12", "qyxs", mobiles(2000), None, ["10"] * 2000, 1, 1, 0.0, 0.0, "")
    first, again = replies_of(record, 0), replies_of(record, 0)
    assert first == again and 40 < len(first) < 160
