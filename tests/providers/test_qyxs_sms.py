"""Table-driven tests of 企业信使's pure functions, on the XML shapes of document 003 (DESIGN §5's reading)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
from pydantic import SecretStr

from models.statuses import MessageStatus
from msgrelay.content_check import check_content, precheck_content
from providers.base import BEIJING, ContentVerdict, HttpResponse, Recipient, SendSpec
from providers.errors import AccountError, AmbiguousError, InvalidInput, PermanentError, TransientError
from providers.qyxs.common import QyxsAccount, error_for_message
from providers.qyxs.sms import (
    REPORT_STATES, QyxsSms, build_balance_request, build_check_request, build_query_request, build_send_request,
    parse_balance_response, parse_check_response, parse_inbound_response, parse_report_response,
    parse_send_response, report_status,
)
from providers.simulator import SimConfig
from providers.simulator.qyxs import QyxsUser
from tests.simulator.conftest import free_port, serving

ACCOUNT = QyxsAccount(name="sms", provider="qyxs_sms", base_url="http://127.0.0.1:18080", userid="12",
                      account="账号", password="密码")
NOW = datetime(2021, 12, 24, 1, 0, 0, tzinfo=timezone.utc)
SMS = QyxsSms()
HEAD = '<?xml version="1.0" encoding="utf-8" ?>'
# chapter 1's answer, filled in
SEND_OK = (HEAD + "<returnsms><returnstatus>Success</returnstatus><message>ok</message>"
           "<remainpoint>9988</remainpoint><taskID>1212</taskID><successCounts>2</successCounts></returnsms>")
# chapter 4's example: two status boxes of task 1212 (the scan lost the mobiles; these are ours)
REPORTS = (HEAD + "<returnsms><statusbox><mobile>15023239810</mobile><taskid>1212</taskid><status>10</status>"
           "<receivetime>2021-12-02 22:12:11</receivetime><errorcode>DELIVRD</errorcode></statusbox>"
           "<statusbox><mobile>13527576163</mobile><taskid>1212</taskid><status>20</status>"
           "<receivetime>2021-12-02 22:12:11</receivetime><errorcode>MK:0001</errorcode></statusbox></returnsms>")
# chapter 5's example
CALLS = (HEAD + "<returnsms><callbox><mobile>15023239810</mobile><taskid>1212</taskid><content>你好，我不需要</content>"
         "<receivetime>2021-12-02 22:12:11</receivetime></callbox><callbox><mobile>13527576163</mobile>"
         "<taskid>1212</taskid><content>你好，本次活动路线是怎样的</content>"
         "<receivetime>2021-12-02 22:12:11</receivetime></callbox></returnsms>")
QUERY_ERROR = HEAD + "<returnsms><errorstatus><error>{}</error><remark>{}</remark></errorstatus></returnsms>"
TWO = [Recipient("15023239810", "j-0"), Recipient("13527576163", "j-1")]


def ok(text: str) -> HttpResponse:
    return HttpResponse(200, text)


def faild(message: str, status: str = "Faild") -> HttpResponse:
    return ok(f"{HEAD}<returnsms><returnstatus>{status}</returnstatus><message>{message}</message>"
              "<remainpoint>0</remainpoint><taskID></taskID><successCounts>0</successCounts></returnsms>")


def test_send_form_is_chapter_one_with_send_time_from_send_at() -> None:
    job = SendSpec("sms", "内容", send_at=NOW + timedelta(hours=1))
    request = build_send_request(ACCOUNT, job, TWO, NOW)
    assert request.path == "/sms.aspx" and request.json is None
    assert request.form == {"action": "send", "userid": "12", "account": "账号", "password": "密码",
                            "mobile": "15023239810,13527576163", "content": "内容",
                            "sendTime": "2021-12-24 10:00:00", "checkcontent": "0"}


@pytest.mark.parametrize(("send_at", "expected"), [(None, ""), (NOW - timedelta(seconds=1), "")])
def test_send_time_empty_means_at_once(send_at: datetime | None, expected: str) -> None:
    assert build_send_request(ACCOUNT, SendSpec("sms", "x", send_at=send_at), TWO, NOW).form["sendTime"] == expected


def test_checkcontent_follows_the_option_then_the_account() -> None:
    checked = ACCOUNT.model_copy(update={"check_content": True})
    assert build_send_request(checked, SendSpec("sms", "x"), TWO, NOW).form["checkcontent"] == "1"
    unchecked = SendSpec("sms", "x", {"checkcontent": "0"})
    assert build_send_request(checked, unchecked, TWO, NOW).form["checkcontent"] == "0"


@pytest.mark.parametrize("status", ["Success", "Sucess", "success"])
def test_accepted_send_gives_task_and_composite_ids(status: str) -> None:
    got = parse_send_response(ok(SEND_OK.replace("Success", status)), TWO)
    assert [(a.mobile, a.custom_id, a.provider_msg_id, a.task_id) for a in got] == [
        ("15023239810", "j-0", "1212:15023239810", "1212"), ("13527576163", "j-1", "1212:13527576163", "1212")]


@pytest.mark.parametrize(("message", "family", "reason"), [
    ("用户名或密码错误", AccountError, "credentials"),
    ("用户名或密码不能为空", AccountError, "credentials"),
    ("对不起，您当前要发送的量大于您当前余额", AccountError, "balance"),
    ("余额不足", AccountError, "balance"),
    ("包含非法字符：代开发票", PermanentError, None),
    ("发送内容包含sql注入字符", PermanentError, None),
    ("短信号码不能为空", PermanentError, None),
    ("短信内容不能为空", PermanentError, None),
    ("其他错误", TransientError, None),
    ("数据库繁忙", TransientError, None),
])
def test_failure_texts_map_to_families(message: str, family: type, reason: str | None) -> None:
    with pytest.raises(family) as caught:
        parse_send_response(faild(message), TWO)
    assert caught.value.message == message  # the platform's own words are kept
    if reason:
        assert caught.value.reason == reason


@pytest.mark.parametrize("text", ["", "<html>502</html>", HEAD + "<returnsms><message/></returnsms>",
                                  HEAD + "<returnsms><returnstatus>Success</returnstatus></returnsms>"])
def test_unreadable_send_answers_are_ambiguous(text: str) -> None:
    with pytest.raises(AmbiguousError):
        parse_send_response(ok(text), TWO)


def test_report_answer_of_chapter_four() -> None:
    reports = parse_report_response(ok(REPORTS))
    assert [(r.status, r.state, r.desc, r.provider_msg_id, r.mobile) for r in reports] == [
        (MessageStatus.DELIVERED, "10", "DELIVRD", "1212:15023239810", "15023239810"),
        (MessageStatus.FAILED, "20", "MK:0001", "1212:13527576163", "13527576163")]
    assert reports[0].reported_at == datetime(2021, 12, 2, 22, 12, 11, tzinfo=BEIJING)
    assert reports[1].raw["errorcode"] == "MK:0001"


@pytest.mark.parametrize(("state", "status"), [
    ("10", MessageStatus.DELIVERED), ("20", MessageStatus.FAILED), ("DELIVRD", MessageStatus.DELIVERED),
    (" UNDELIV ", MessageStatus.FAILED), ("30", MessageStatus.UNKNOWN), ("", MessageStatus.UNKNOWN),
])
def test_report_status_map(state: str, status: MessageStatus) -> None:
    assert report_status(state) == status
    assert REPORT_STATES(state.strip().upper()) == status and SMS.report_states is REPORT_STATES


@pytest.mark.parametrize("text", [HEAD + "<returnsms></returnsms>", HEAD + "<returnsms/>"])
def test_empty_report_answers(text: str) -> None:
    assert parse_report_response(ok(text)) == [] and parse_inbound_response(ok(text)) == []


@pytest.mark.parametrize(("code", "remark", "family"), [
    ("1", "用户名或密码不能为空", AccountError), ("2", "用户名或密码错误", AccountError),
    ("3", "该用户不允许查看状态报告", AccountError), ("4", "参数不正确", PermanentError), ("9", "?", TransientError),
])
def test_query_errors_of_chapters_four_and_five(code: str, remark: str, family: type) -> None:
    for parse in (parse_report_response, parse_inbound_response):
        with pytest.raises(family) as caught:
            parse(ok(QUERY_ERROR.format(code, remark)))
        assert caught.value.message == remark


def test_inbound_answer_of_chapter_five() -> None:
    got = parse_inbound_response(ok(CALLS))
    assert [(i.mobile, i.content, i.task_id) for i in got] == [
        ("15023239810", "你好，我不需要", "1212"), ("13527576163", "你好，本次活动路线是怎样的", "1212")]
    assert got[0].received_at == datetime(2021, 12, 2, 22, 12, 11, tzinfo=BEIJING)


def test_the_password_is_sent_but_never_shown() -> None:
    request = build_balance_request(ACCOUNT)
    assert request.form["password"] == "密码" and "密码" not in repr(request) and "**" in str(request.form)


def test_queries_and_balance_forms() -> None:
    assert build_query_request(ACCOUNT, "/statusApi.aspx").form == {
        "action": "query", "userid": "12", "account": "账号", "password": "密码"}
    assert build_balance_request(ACCOUNT).form["action"] == "overage"
    assert build_check_request(ACCOUNT, "内容").form == {
        "action": "checkkeyword", "userid": "12", "account": "账号", "password": "密码", "content": "内容"}


def test_balance_keeps_payinfo_overage_and_send_total() -> None:
    got = parse_balance_response(ok(HEAD + "<returnsms><returnstatus>Sucess</returnstatus><message></message>"
                                     "<payinfo>预付费</payinfo><overage>9988</overage><sendTotal>10000</sendTotal>"
                                     "</returnsms>"))
    assert got[0].amount == Decimal("9988")
    assert got[0].raw == {"returnstatus": "Sucess", "message": "", "payinfo": "预付费", "overage": "9988",
                          "sendTotal": "10000"}
    with pytest.raises(AccountError):
        parse_balance_response(faild("用户名或密码错误"))


@pytest.mark.parametrize(("message", "passed"), [
    ("未包含非法字符", True), ("包含非法字符", False), ("包含非法字符：代开发票", False), ("发送内容包含sql注入字符", False),
])
def test_keyword_check_verdicts(message: str, passed: bool) -> None:
    verdict = parse_check_response(ok(f"{HEAD}<returnsms><message>{message}</message></returnsms>"))
    assert verdict == ContentVerdict(passed, message)


def test_keyword_check_with_a_wrong_password_is_an_account_error() -> None:
    with pytest.raises(AccountError):
        parse_check_response(ok(f"{HEAD}<returnsms><message>用户名或密码错误</message></returnsms>"))


def test_xml_bombs_are_refused() -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            "<returnsms><message>&b;</message></returnsms>")
    with pytest.raises(TransientError):
        parse_check_response(ok(bomb))


def test_unknown_message_falls_back_to_transient() -> None:
    assert isinstance(error_for_message("系统维护中"), TransientError)


# ---- validate (what submission runs) ---------------------------------------------------------------
@pytest.mark.parametrize(("recipients", "job", "field"), [
    ([Recipient("1502323981", "")], SendSpec("sms", "hi"), "recipients[0].mobile"),
    ([Recipient("+8615023239810", "")], SendSpec("sms", "hi"), "recipients[0].mobile"),
    ([Recipient("15023239810", "a"), Recipient("15023239810", "b")], SendSpec("sms", "hi"), "recipients[1].mobile"),
    ([Recipient("15023239810", "", "own")], SendSpec("sms", "hi"), "recipients[0].content"),
    ([Recipient("15023239810", "")], SendSpec("sms", None), "content"),
    ([Recipient("15023239810", "")], SendSpec("sms", "hi", {"checkcontent": "2"}), "options.checkcontent"),
    ([Recipient("15023239810", "")], SendSpec("sms", "hi", {"extno": "1"}), "options.extno"),
])
def test_bad_input_names_the_field(recipients: list, job: SendSpec, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        SMS.validate(job, recipients)
    assert caught.value.field == field


def test_limits_and_flags() -> None:
    assert SMS.max_batch(ACCOUNT, "sms") == 1000
    assert SMS.max_batch(ACCOUNT.model_copy(update={"max_batch": 200}), "sms") == 200
    assert SMS.native_schedule and SMS.has_inbound_query and SMS.queue_for("sms", 1) == "bulk"
    assert SMS.has_content_check
    SMS.precheck(ACCOUNT, SendSpec("sms", "hi"))  # the keyword check is the flow's now: no request here
    assert not SMS.wants_content_check(ACCOUNT)
    assert SMS.wants_content_check(ACCOUNT.model_copy(update={"check_content": True}))


@pytest.mark.parametrize("n", [0, 1001])
def test_batch_outside_1_to_1000_is_refused_before_building(n: int) -> None:
    batch = [Recipient(f"150{i:08d}", f"j-{i}") for i in range(n)]
    with pytest.raises(PermanentError) as caught:
        SMS.build_send(ACCOUNT, SendSpec("sms", "hi"), batch, NOW)
    assert caught.value.code == "BATCH_SIZE"


# ---- the keyword check over HTTP, against the simulator's checkkeyword ---------------------------------
@pytest.fixture(scope="module")
def simulated() -> Iterator[QyxsAccount]:
    """ACCOUNT pointed at a running simulator that knows its userid, account and password."""
    users = {ACCOUNT.userid: QyxsUser(ACCOUNT.account, ACCOUNT.password.get_secret_value())}
    with serving(SimConfig(credentials={"qyxs": users})) as url:
        yield ACCOUNT.model_copy(update={"base_url": url, "check_content": True})


def sent_requests(account: QyxsAccount) -> list:
    """The sends the simulator has recorded (a keyword check is not one)."""
    answer = requests.get(account.base_url + "/_sim/requests", timeout=5)
    answer.raise_for_status()
    return answer.json()


@pytest.mark.parametrize(("text", "verdict"), [
    ("周末特惠，欢迎光临", ContentVerdict(True, "未包含非法字符")),
    ("可代开发票，详询", ContentVerdict(False, "包含非法字符：代开发票")),
])
def test_content_check_against_the_simulator(simulated: QyxsAccount, text: str, verdict: ContentVerdict) -> None:
    assert check_content(simulated, text) == verdict
    assert sent_requests(simulated) == []


@pytest.mark.parametrize(("update", "field", "says"), [
    (lambda: {}, "content", "包含非法字符：赌博"),
    (lambda: {"password": SecretStr("wrong")}, "account", "QYXS_AUTH"),
    # nothing listens there: the check did not answer (a TransientError), so the job may be submitted again
    (lambda: {"base_url": f"http://127.0.0.1:{free_port()}"}, "content", "try again"),
], ids=["keyword-hit", "wrong-password", "no-answer"])
def test_precheck_refuses_before_anything_is_written(simulated: QyxsAccount, update: Callable[[], dict],
                                                     field: str, says: str) -> None:
    account = simulated.model_copy(update=update())
    with pytest.raises(InvalidInput) as caught:
        precheck_content(account, SMS, SendSpec("sms", "赌博"))
    assert caught.value.field == field and says in caught.value.rule
    assert sent_requests(simulated) == []


def test_precheck_lets_a_clean_text_through(simulated: QyxsAccount) -> None:
    precheck_content(simulated, SMS, SendSpec("sms", "周末特惠"))
    precheck_content(ACCOUNT, SMS, SendSpec("sms", "赌博"))  # no check_content: no request at all
