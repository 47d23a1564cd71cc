"""Table-driven tests of Emay voice-SMS's pure functions, with fixtures copied from document 001 (2.4)."""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest

from models.statuses import MessageStatus
from providers.base import Recipient, SendSpec
from providers.emay.common import CODE_FAMILIES, VOICE_CODES, sign
from providers.emay.voice_sms import (
    JOIN_STATES,
    EmayVoiceSms,
    build_balance_request,
    build_report_request,
    build_send_request,
    parse_balance_response,
    parse_report_response,
    parse_send_response,
)
from providers.errors import AccountError, AmbiguousError, InvalidInput, PermanentError, RateLimited, TransientError
from tests.providers.emay_doc001 import APP_ID, NOW, SECRET, SHARED_CODES, TS, answer, batch_of, emay_account

ACCOUNT = emay_account("join", "emay_voice_sms")

SEND_ANSWER = """{"code" : "SUCCESS", "data" : [
  {"mobile": "15538850000", "joinId": "20170392833833891100", "customJoinId": "20170392833833891100"}]}"""
REPORT_ANSWER = """{"code": "SUCCESS", "data": [{
    "appId": "EUCP - EMY - DDDD - 3EEEE", "joinId": "20170392833833891100", "customJoinId": "1553885000011111",
    "state": " 4 ", "desc": "success", "mobile": "18566666666", "keyContent": "12", "voiceSign": ""
  }, {
    "appId": "EUCP - EMY - DDDD - 3EEEE", "joinId": "20170392833833891100", "customJoinId": "1553885000011111",
    "state": " 2 ", "desc": "fail", "mobile": "18566666666", "keyContent": "12", "voiceSign": ""}]}"""

# 3.4 语音短信状态码表, copied from the document (its first rows, which 3.2 gives too, are SHARED_CODES), with
# the family the design gives each code
TABLE_3_4 = {
    **SHARED_CODES,
    "ERROR_TRIGGERCONDITIONS": ("触发条件错误", PermanentError),
    "ERROR_TIMINGTIME": ("发送短信定时时间格式错误", PermanentError),
    "ERROR_KEYCONTENT": ("按键内容必须为数字", PermanentError),
    "ERROR_CONNECTTIME": ("连通时间在 6-60 秒内", PermanentError),
    "ERROR_ISACOUSTICSIGN": ("留言标识错误", PermanentError),
    "ERROR_ISINTERACTIVE": ("互动标识错误", PermanentError),
    "ERROR_CUSTOM_JOIN_ID": ("自定义 ID 错误", PermanentError),
    "ERROR_NEEDMORE_BLANCE": ("余额不足", AccountError),
    "ERROR_CUSTOM_JOIN_ID_NUMBER": ("自定义 ID 数量错误", PermanentError),
    "ERROR_TIMING": ("暂不支持定时外呼", PermanentError),
    "ERROR_TRIGGER": ("无效值", PermanentError),
}
# 3.2 codes missing from 3.4 (over-speed, service type): one shared table, so /join/* maps them too
SHARED_WITH_3_2 = {"ERROR_OVER_SPEED": RateLimited, "ERROR_MESSAGE_TYPE": AccountError}


def test_send_form_has_the_documented_fields() -> None:
    spec = SendSpec("voice_sms", "1234", {
        "isInteractive": "1", "interactiveContent": "1234", "acousticSignContent": "nihao", "smsContent": "nihao",
        "triggerConditions": 3, "keyContent": 1, "connectTime": "010",
    })
    request = build_send_request(ACCOUNT, spec, batch_of(2, "j"), NOW)
    assert request.path == "/join/send"
    assert dict(request.form) == {
        "appId": APP_ID, "timestamp": TS, "sign": sign(APP_ID, SECRET, TS), "voiceContent": "1234",
        "mobiles": "18001098900,18001098901", "customJoinIds": "j0,j1", "isInteractive": "1",
        "interactiveContent": "1234", "acousticSignContent": "nihao", "smsContent": "nihao",
        "triggerConditions": "3", "keyContent": "1", "connectTime": "10",
    }
    assert "content" not in request.form


def test_report_and_balance_requests() -> None:
    report = build_report_request(ACCOUNT, NOW, number=200)
    assert report.path == "/join/getReport"
    assert dict(report.form) == {"appId": APP_ID, "timestamp": TS, "sign": sign(APP_ID, SECRET, TS), "number": "200"}
    balance = build_balance_request(ACCOUNT)
    assert balance.path == "/join/getBalance"
    assert dict(balance.form) == {"appId": APP_ID, "sign": hashlib.md5(f"{APP_ID}{SECRET}".encode()).hexdigest()}


def test_provider_declares_its_kind() -> None:
    provider = EmayVoiceSms()
    assert provider.name == "emay_voice_sms"
    spec = provider.kinds["voice_sms"]
    assert (spec.endpoint, spec.max_recipients, spec.queue) == ("/join/send", 500, "bulk")
    assert spec.options == {"isInteractive", "interactiveContent", "isAcousticSign", "acousticSignContent",
                            "smsContent", "triggerConditions", "keyContent", "connectTime"}
    # the document has no voice-SMS push: the provider declares none
    assert provider.pushes == {} and provider.push_path is None


@pytest.mark.parametrize("n", [0, 501])
def test_batch_outside_1_to_500_is_refused_before_building(n: int) -> None:
    spec = SendSpec("voice_sms", "hi", {"triggerConditions": "3", "keyContent": "1"})
    batch = [Recipient(f"138{i:08d}", f"j{i}") for i in range(n)]
    with pytest.raises(PermanentError) as err:
        EmayVoiceSms().build_send(ACCOUNT, spec, batch, NOW)
    assert err.value.code == "BATCH_SIZE"


OK = [Recipient("13800138000", "a")]
KEY = {"triggerConditions": "3", "keyContent": "1"}
TIME = {"triggerConditions": 4, "connectTime": 30}


@pytest.mark.parametrize("content, options, recipients, field, rule", [
    ("hi", KEY, OK, None, None),
    ("hi", TIME, OK, None, None),
    ("hi", {**TIME, "connectTime": "6", "isAcousticSign": 1, "smsContent": "短信"}, OK, None, None),
    ("hi", {"triggerConditions": 3, "keyContent": "1", "connectTime": 60}, OK, None, None),  # as in the example
    ("hi", {}, OK, "options.triggerConditions", "is required"),
    ("hi", {"triggerConditions": "1"}, OK, "options.triggerConditions", '"3"'),
    ("hi", {"triggerConditions": "3"}, OK, "options.keyContent", "required when triggerConditions is 3"),
    ("hi", {"triggerConditions": "3", "keyContent": "12"}, OK, "options.keyContent", "single digit 0–9"),
    ("hi", {"triggerConditions": "3", "keyContent": "#"}, OK, "options.keyContent", "single digit 0–9"),
    ("hi", {"triggerConditions": "4"}, OK, "options.connectTime", "required when triggerConditions is 4"),
    ("hi", {**TIME, "connectTime": 5}, OK, "options.connectTime", "integer from 6 to 60"),
    ("hi", {**TIME, "connectTime": "61"}, OK, "options.connectTime", "integer from 6 to 60"),
    ("hi", {**TIME, "connectTime": "7.5"}, OK, "options.connectTime", "integer from 6 to 60"),
    ("hi", {**KEY, "isInteractive": "yes"}, OK, "options.isInteractive", '"0" or "1"'),
    ("hi", {**KEY, "isAcousticSign": 2}, OK, "options.isAcousticSign", '"0" or "1"'),
    ("hi", {**KEY, "timingTime": "20180809101010"}, OK, "options.timingTime", "send_at"),
    ("hi", {**KEY, "colour": "red"}, OK, "options.colour", "known options"),
    ("", KEY, OK, "content", "is required"),
    ("字" * 501, KEY, OK, "content", "at most 500 characters, got 501"),
    ("字" * 300, {**KEY, "interactiveContent": "字" * 150, "acousticSignContent": "字" * 51}, OK, "content",
     "at most 500 characters, got 501"),
    ("hi", KEY, [Recipient("13800138000", "a", content="x")], "recipients[0].content", "same content"),
    ("hi", KEY, [Recipient("1380013800", "a")], "recipients[0].mobile", "mainland mobile"),
    ("hi", KEY, [Recipient("13800138000", "a,b")], "recipients[0].custom_id", "comma"),
])
def test_validate(content: str, options: dict, recipients: list[Recipient], field: str | None,
                  rule: str | None) -> None:
    spec = SendSpec("voice_sms", content, options)
    if field is None:
        EmayVoiceSms().validate(spec, recipients)
        return
    with pytest.raises(InvalidInput) as err:
        EmayVoiceSms().validate(spec, recipients)
    assert err.value.field == field
    assert rule in err.value.rule


def test_send_answer_from_the_document() -> None:
    (accepted,) = parse_send_response(answer(SEND_ANSWER))
    assert (accepted.mobile, accepted.custom_id, accepted.provider_msg_id) == (
        "15538850000", "20170392833833891100", "20170392833833891100")


@pytest.mark.parametrize("code", sorted(TABLE_3_4))
def test_every_documented_code_maps_to_a_family(code: str) -> None:
    text, family = TABLE_3_4[code]
    assert code in CODE_FAMILIES
    if family is None:
        assert VOICE_CODES.error(code) is None
        return
    with pytest.raises(family) as err:
        parse_send_response(answer(json.dumps({"code": code, "data": []})))
    assert type(err.value) is family
    assert err.value.code == code and text in err.value.message
    if code == "ERROR_NEEDMORE_BLANCE":
        assert err.value.reason == "balance"
    elif family is AccountError:
        assert err.value.reason == "credentials"


@pytest.mark.parametrize("code, family", SHARED_WITH_3_2.items())
def test_shared_codes(code: str, family: type) -> None:
    with pytest.raises(family):
        parse_send_response(answer(json.dumps({"code": code})))


def test_unknown_code_and_unreadable_answers() -> None:
    with pytest.raises(TransientError) as err:
        parse_send_response(answer('{"code": "ERROR_NEW"}'))
    assert type(err.value) is TransientError
    with pytest.raises(AmbiguousError):
        parse_send_response(answer("gateway says hello"))
    with pytest.raises(TransientError):
        parse_report_response(answer("gateway says hello"))


def test_report_answer_from_the_document() -> None:
    delivered, failed = parse_report_response(answer(REPORT_ANSWER))
    assert (delivered.status, delivered.state, delivered.desc) == (MessageStatus.DELIVERED, "4", "success")
    assert (failed.status, failed.state, failed.desc) == (MessageStatus.FAILED, "2", "fail")
    assert delivered.provider_msg_id == "20170392833833891100" and delivered.custom_id == "1553885000011111"
    assert delivered.mobile == "18566666666" and delivered.raw["keyContent"] == "12"
    assert delivered.raw["state"] == " 4 "


@pytest.mark.parametrize("state, status", [(" 4 ", MessageStatus.DELIVERED), ("3", MessageStatus.EXPIRED),
                                           (" 2 ", MessageStatus.FAILED), ("1", MessageStatus.UNKNOWN),
                                           ("SUCCESS", MessageStatus.UNKNOWN), (4, MessageStatus.DELIVERED)])
def test_report_states(state: object, status: MessageStatus) -> None:
    # the older document (000) writes the key " desc ": keys are trimmed too
    body = json.dumps({"code": "SUCCESS", "data": [{"joinId": "x", "state": state, " desc ": "d"}]})
    (report,) = parse_report_response(answer(body))
    assert report.status is status and report.desc == "d"
    assert JOIN_STATES(str(state).strip()) is status and EmayVoiceSms.report_states is JOIN_STATES


@pytest.mark.parametrize("body, amount", [('{"data": 1024, "code": "SUCCESS"}', Decimal("1024")),
                                          ('{"data": "12.5", "code": "SUCCESS"}', Decimal("12.5"))])
def test_balance_answers(body: str, amount: Decimal) -> None:
    (balance,) = parse_balance_response(answer(body))
    assert balance.amount == amount


def test_balance_errors() -> None:
    with pytest.raises(AccountError):
        parse_balance_response(answer('{"code": "ERROR_SIGN"}'))
    with pytest.raises(TransientError):
        parse_balance_response(answer('{"code": "SUCCESS"}'))
