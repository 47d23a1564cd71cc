"""Table-driven tests of Emay voice's pure functions, with fixtures copied from document 001."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from models.statuses import MessageStatus
from providers.base import BEIJING, Recipient, SendSpec
from providers.common import beijing_time
from providers.emay.common import (
    CODE_FAMILIES,
    VOICE_CODES,
    beijing_timestamp,
    sign,
)
from providers.emay.voice import (
    VOICE_STATES,
    EmayVoice,
    build_balance_request,
    build_report_request,
    build_send_request,
    parse_balance_response,
    parse_report_response,
    parse_send_response,
)
from providers.errors import AccountError, AmbiguousError, InvalidInput, PermanentError, RateLimited, TransientError
from tests.providers.emay_doc001 import APP_ID, NOW, SECRET, SHARED_CODES, TS, answer, batch_of, emay_account

ACCOUNT = emay_account("voice", "emay_voice")

# 2.1.1.2: the document's send answer
SEND_ANSWER = """{"code" : "SUCCESS", "data" : [
  {"mobile": "15538850000", "voiceId": "20170392833833891100", "customVoiceId": "20170392833833891100"},
  {"mobile": "15538850001", "voiceId": "20170392833833892100", "customVoiceId": "20170392833833891100"}]}"""
# 2.1.2.2: the document's report answer
REPORT_ANSWER = """{"code": "SUCCESS", "data": [{
    "appId": "EUCP - EMY - DDDD - 3EEEE", "voiceId": "20170392833833891100",
    "customVoiceId": "1553885000011111", "state": " SUCCESS ", "message": "成功",
    "callingTime": "2017-03-15 12:00:00", "callingDuration": 68.02, "mobile": "18566666666"
  }, {
    "appId": "EUCP - EMY - DDDD - 3EEEE", "voiceId": "20170392833833891100",
    "customVoiceId": "1553885000011111", "state": " SUCCESS ", "message": "成功",
    "callingTime": "2017-03-15 12:00:00", "callingDuration": 68.02, "mobile": "18566666666"}]}"""

# 3.2 接口状态码表, copied from the document (its first rows, which 3.4 repeats, are SHARED_CODES), with the
# family the design gives each code
TABLE_3_2 = {
    **SHARED_CODES,
    "ERROR_VERIFICATION_CODE_CONTENT": ("短信语音验证码内容错误", PermanentError),
    "ERROR_CUSTOM_VOICE_ID": ("自定义语音 ID 错误", PermanentError),
    "ERROR_NEEDMORE_BALANCE": ("余额不足", AccountError),
    "ERROR_CUSTOM_VOICE_ID_NUMBER": ("自定义语音 ID 数量错误", PermanentError),
    "ERROR_OVER_SPEED": ("请求超速", RateLimited),
    "ERROR_MESSAGE_TYPE": ("服务号类型不匹配", AccountError),
}
REASONS = {"ERROR_NEEDMORE_BALANCE": "balance"}

# 3.1 状态报告表
TABLE_3_1 = {
    "SUCCESS": MessageStatus.DELIVERED, "FAIL_CALL": MessageStatus.FAILED,
    "FAIL_ERROR_VOICE": MessageStatus.FAILED, "FAIL_UNKNOWN": MessageStatus.FAILED,
    "TIMEOUT": MessageStatus.EXPIRED, "FAIL_NEEDMORE_BALANCE": MessageStatus.FAILED,
    "FAIL_MOBILE": MessageStatus.FAILED, "FAIL_BLACKDICTIONARY": MessageStatus.FAILED,
    "FAIL_AUDITINGFAIL": MessageStatus.FAILED, "FAIL_APPID": MessageStatus.FAILED,
}


# --- signing ------------------------------------------------------------------------------------------

def test_sign_is_md5_of_appid_secret_timestamp() -> None:
    expected = hashlib.md5(b"EUCP-EMY-DDDD-3EEEE" + b"0123456789abcdef" + b"20170101120000").hexdigest()
    assert sign(APP_ID, SECRET, TS) == expected
    assert len(expected) == 32 and expected == expected.lower()
    assert sign(APP_ID, SECRET) == hashlib.md5(b"EUCP-EMY-DDDD-3EEEE0123456789abcdef").hexdigest()


@pytest.mark.parametrize("now, expected", [
    (datetime(2017, 1, 1, 4, 0, 0, tzinfo=timezone.utc), "20170101120000"),
    (datetime(2016, 12, 31, 20, 30, 5, tzinfo=timezone.utc), "20170101043005"),  # crosses the date line
    (datetime(2017, 1, 1, 12, 0, 0, tzinfo=BEIJING), "20170101120000"),
    (datetime(2016, 12, 31, 23, 0, 0, tzinfo=timezone(timedelta(hours=-5))), "20170101120000"),
    (datetime(2017, 1, 1, 4, 0, 0), "20170101120000"),  # naive: taken as UTC
])
def test_beijing_timestamp(now: datetime, expected: str) -> None:
    assert beijing_timestamp(now) == expected


def test_beijing_time() -> None:
    parsed = beijing_time("2017-03-15 12:00:00")
    assert parsed == datetime(2017, 3, 15, 4, 0, 0, tzinfo=timezone.utc)
    assert parsed is not None and parsed.utcoffset() == timedelta(hours=8)
    assert beijing_time(" 2017-03-15 12:00:00 ") == parsed
    assert beijing_time("") is None and beijing_time(None) is None
    # malformed text is None now (it used to raise): a report is never lost over its time
    assert beijing_time("yesterday") is None and beijing_time("2017-03-15") is None


# --- requests -----------------------------------------------------------------------------------------

def test_notify_form_has_the_documented_fields_in_recipient_order() -> None:
    spec = SendSpec("notify", "hello", {"isInteractive": 1, "interactiveContent": 1234,
                                        "acousticSignContent": "请问还有其他可以帮助您的吗"})
    request = build_send_request(ACCOUNT, spec, batch_of(2, "c"), NOW)
    assert request.path == "/voice/send" and request.method == "POST"
    assert dict(request.form) == {
        "appId": APP_ID, "timestamp": TS, "sign": sign(APP_ID, SECRET, TS), "content": "hello",
        "mobiles": "18001098900,18001098901", "customVoiceIds": "c0,c1", "isInteractive": "1",
        "interactiveContent": "1234", "acousticSignContent": "请问还有其他可以帮助您的吗",
    }


def test_marketing_uses_sendctcode_and_omits_absent_options() -> None:
    request = build_send_request(ACCOUNT, SendSpec("marketing", "hi"), batch_of(1, "c"), NOW)
    assert request.path == "/voice/sendCTCode"
    assert set(request.form) == {"appId", "timestamp", "sign", "content", "mobiles", "customVoiceIds"}


def test_vfcode_form_uses_singular_fields() -> None:
    request = build_send_request(ACCOUNT, SendSpec("vfcode", "1234"), batch_of(1, "c"), NOW)
    assert request.path == "/voice/sendVFCode"
    assert dict(request.form) == {"appId": APP_ID, "timestamp": TS, "sign": sign(APP_ID, SECRET, TS),
                                  "content": "1234", "mobile": "18001098900", "customVoiceId": "c0"}


@pytest.mark.parametrize("kind, n", [("vfcode", 2), ("notify", 501), ("notify", 0)])
def test_batch_over_the_kind_limit_is_refused_before_building(kind: str, n: int) -> None:
    batch = [Recipient(f"138{i:08d}", f"c{i}") for i in range(n)]
    with pytest.raises(PermanentError) as err:
        EmayVoice().build_send(ACCOUNT, SendSpec(kind, "1234"), batch, NOW)
    assert err.value.code == "BATCH_SIZE"


def test_batch_without_custom_ids_is_refused_before_building() -> None:
    batch = [Recipient("13800138000", "c0"), Recipient("13800138001", "")]
    with pytest.raises(PermanentError) as err:
        EmayVoice().build_send(ACCOUNT, SendSpec("notify", "hi"), batch, NOW)
    assert err.value.code == "NO_CUSTOM_ID"


def test_build_send_of_a_batch_within_the_limit_is_the_builders_request() -> None:
    spec = SendSpec("notify", "hello")
    assert EmayVoice().build_send(ACCOUNT, spec, batch_of(2, "c"), NOW) == build_send_request(
        ACCOUNT, spec, batch_of(2, "c"), NOW)


def test_report_and_balance_requests() -> None:
    report = build_report_request(ACCOUNT, NOW)
    assert report.path == "/voice/getReport"
    assert dict(report.form) == {"appId": APP_ID, "timestamp": TS, "sign": sign(APP_ID, SECRET, TS), "number": "1000"}
    assert build_report_request(ACCOUNT, NOW, number=200).form["number"] == "200"
    with pytest.raises(ValueError):
        build_report_request(ACCOUNT, NOW, number=1001)
    balance = build_balance_request(ACCOUNT)
    assert balance.path == "/voice/getBalance"
    assert dict(balance.form) == {"appId": APP_ID, "sign": hashlib.md5(f"{APP_ID}{SECRET}".encode()).hexdigest()}


def test_provider_declares_kinds() -> None:
    provider = EmayVoice()
    assert provider.name == "emay_voice"
    assert {k: (s.endpoint, s.max_recipients, s.queue) for k, s in provider.kinds.items()} == {
        "notify": ("/voice/send", 500, "bulk"), "vfcode": ("/voice/sendVFCode", 1, "otp"),
        "marketing": ("/voice/sendCTCode", 500, "bulk")}
    assert provider.kinds["notify"].options == {"isInteractive", "interactiveContent", "acousticSignContent"}
    assert provider.kinds["marketing"].options == provider.kinds["notify"].options
    assert provider.kinds["vfcode"].options == frozenset()


# --- validation ---------------------------------------------------------------------------------------

OK = [Recipient("13800138000", "a"), Recipient("13900139000", "b")]


@pytest.mark.parametrize("spec, recipients, field, rule", [
    (SendSpec("notify", "hello"), OK, None, None),
    (SendSpec("marketing", "字" * 200, {"interactiveContent": "字" * 150, "acousticSignContent": "字" * 150}), OK,
     None, None),
    (SendSpec("vfcode", "1234"), OK[:1], None, None),
    (SendSpec("vfcode", "123456"), OK[:1], None, None),
    (SendSpec("notify", None), OK, "content", "is required"),
    (SendSpec("notify", "字" * 201), OK, "content", "at most 200 characters, got 201"),
    (SendSpec("notify", "字" * 200, {"interactiveContent": "字" * 200, "acousticSignContent": "字" * 101}), OK,
     "content", "at most 500 characters, got 501"),
    (SendSpec("vfcode", "12345"), OK[:1], "content", "exactly 4 or 6 digits"),
    (SendSpec("vfcode", "12a4"), OK[:1], "content", "exactly 4 or 6 digits"),
    (SendSpec("vfcode", "１２３４"), OK[:1], "content", "exactly 4 or 6 digits"),
    (SendSpec("vfcode", "1234", {"isInteractive": "1"}), OK[:1], "options.isInteractive", "known options: none"),
    (SendSpec("notify", "hi", {"isInteractive": "2"}), OK, "options.isInteractive", '"0" or "1"'),
    (SendSpec("notify", "hi", {"timingTime": "20180809101010"}), OK, "options.timingTime", "unknown option"),
    (SendSpec("notify", "hi"), [Recipient("13800138000", "a", content="x")], "recipients[0].content", "same content"),
    (SendSpec("notify", "hi"), [OK[0], Recipient("12345", "b")], "recipients[1].mobile", "mainland mobile"),
    (SendSpec("notify", "hi"), [Recipient("13800138000", "x" * 65)], "recipients[0].custom_id", "at most 64"),
    (SendSpec("notify", "hi"), [], "recipients", "at least one"),
    (SendSpec("sms", "hi"), OK, "kind", "notify, vfcode, marketing"),
])
def test_validate(spec: SendSpec, recipients: list[Recipient], field: str | None, rule: str | None) -> None:
    if field is None:
        EmayVoice().validate(spec, recipients)
        return
    with pytest.raises(InvalidInput) as err:
        EmayVoice().validate(spec, recipients)
    assert err.value.field == field
    assert rule in err.value.rule


# --- answers ------------------------------------------------------------------------------------------

def test_send_answer_from_the_document() -> None:
    accepted = parse_send_response(answer(SEND_ANSWER))
    assert [(a.mobile, a.custom_id, a.provider_msg_id) for a in accepted] == [
        ("15538850000", "20170392833833891100", "20170392833833891100"),
        ("15538850001", "20170392833833891100", "20170392833833892100"),
    ]


def test_send_answer_without_custom_id_takes_it_from_the_batch() -> None:
    body = json.dumps({"code": "SUCCESS", "data": [{"mobile": "18001098901", "voiceId": "v1"}]})
    accepted = EmayVoice().parse_send(SendSpec("notify", "x"), batch_of(2, "c"), answer(body))
    assert [(a.mobile, a.custom_id, a.provider_msg_id) for a in accepted] == [("18001098901", "c1", "v1")]


@pytest.mark.parametrize("code", sorted(TABLE_3_2))
def test_every_documented_code_maps_to_a_family(code: str) -> None:
    text, family = TABLE_3_2[code]
    assert code in CODE_FAMILIES
    if family is None:
        assert VOICE_CODES.error(code) is None
        return
    with pytest.raises(family) as err:
        parse_send_response(answer(json.dumps({"code": code})))
    assert type(err.value) is family
    assert err.value.code == code and text in err.value.message
    if family is AccountError:
        assert err.value.reason == REASONS.get(code, "credentials")


def test_unknown_code_falls_back_to_transient() -> None:
    with pytest.raises(TransientError) as err:
        parse_send_response(answer('{"code": "ERROR_SOMETHING_NEW"}'))
    assert type(err.value) is TransientError and err.value.code == "ERROR_SOMETHING_NEW"


@pytest.mark.parametrize("text, status", [("<html>502</html>", 200), ("", 200), ('["SUCCESS"]', 200),
                                          ('{"data": []}', 200)])
def test_unreadable_send_answer_is_ambiguous(text: str, status: int) -> None:
    with pytest.raises(AmbiguousError):
        parse_send_response(answer(text, status))


def test_unreadable_refusal_is_transient() -> None:
    with pytest.raises(TransientError):
        parse_send_response(answer("Not Found", 404))


@pytest.mark.parametrize("parse", [parse_report_response, parse_balance_response])
def test_unreadable_query_answer_is_transient(parse) -> None:  # noqa: ANN001
    with pytest.raises(TransientError) as err:
        parse(answer("<html>busy</html>"))
    assert not isinstance(err.value, AmbiguousError)


def test_report_answer_from_the_document() -> None:
    reports = parse_report_response(answer(REPORT_ANSWER))
    assert len(reports) == 2
    report = reports[0]
    assert report.status is MessageStatus.DELIVERED and report.state == "SUCCESS"
    assert report.desc == "成功" and report.mobile == "18566666666"
    assert report.provider_msg_id == "20170392833833891100" and report.custom_id == "1553885000011111"
    assert report.reported_at == datetime(2017, 3, 15, 12, 0, 0, tzinfo=BEIJING)
    assert report.raw["state"] == " SUCCESS " and report.raw["callingDuration"] == 68.02


@pytest.mark.parametrize("state, status", [*TABLE_3_1.items(), (" TIMEOUT ", MessageStatus.EXPIRED),
                                           ("FAIL_SOMETHING_NEW", MessageStatus.FAILED),
                                           ("DELIVRD", MessageStatus.UNKNOWN), ("", MessageStatus.UNKNOWN)])
def test_report_states(state: str, status: MessageStatus) -> None:
    body = json.dumps({"code": "SUCCESS", "data": [{"voiceId": "v", "state": state, "callingTime": "bad"}]})
    (report,) = parse_report_response(answer(body))
    assert report.status is status and report.state == state.strip()
    assert report.reported_at is None
    assert VOICE_STATES(state.strip()) is status and EmayVoice.report_states is VOICE_STATES


def test_undocumented_state_keeps_the_message_open() -> None:
    assert VOICE_STATES.fallback is MessageStatus.UNKNOWN


def test_empty_report_page_and_report_errors() -> None:
    assert parse_report_response(answer('{"code": "SUCCESS", "data": []}')) == []
    assert parse_report_response(answer('{"code": "SUCCESS"}')) == []
    with pytest.raises(AccountError):
        parse_report_response(answer('{"code": "ERROR_SIGN"}'))


@pytest.mark.parametrize("body, amount", [('{"balance": 1024, "responseCode": "SUCCESS"}', Decimal("1024")),
                                          ('{"balance": "88.50", "responseCode": "SUCCESS"}', Decimal("88.50"))])
def test_balance_answers(body: str, amount: Decimal) -> None:
    (balance,) = parse_balance_response(answer(body))
    assert balance.amount == amount


@pytest.mark.parametrize("body, family", [('{"responseCode": "ERROR_APPID"}', AccountError),
                                          ('{"responseCode": "ERROR_CLIENT_IP"}', AccountError),
                                          ('{"balance": "xxx", "responseCode": "SUCCESS"}', TransientError)])
def test_balance_errors(body: str, family: type) -> None:
    with pytest.raises(family):
        parse_balance_response(answer(body))
