"""Table-driven tests of Emay international SMS's pure functions, with fixtures copied from document 004."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest

from models.statuses import MessageStatus
from providers.base import BEIJING, HttpResponse, Recipient, SendSpec
from providers.emay.common import EmayAccount
from providers.emay.ims import (
    BATCH, CODE_FAMILIES, CODE_MESSAGES, IMS_CODES, IMS_STATES, PERSONAL, SINGLE, EmayIms, build_report_request,
    build_send_request, parse_report_response, parse_send_response,
)
from providers.errors import (
    AccountError, AmbiguousError, InvalidInput, PermanentError, RecipientRejected, TransientError,
)

APP_ID = "EUCP-EMY-SMS0-4SYGK"  # the document's example appId
SECRET = "9988776655443322"
ACCOUNT = EmayAccount(name="ims", provider="emay_ims", base_url="http://127.0.0.1:18080", app_id=APP_ID,
                      secret_key=SECRET)
NOW = datetime(2018, 3, 30, 8, 11, 38, tzinfo=timezone.utc)  # 20180330161138 in Beijing, as in 2.1.1.3
TS = "20180330161138"
TEXT = "This is a text message to Australia"
IMS = EmayIms()

# 2.1.2.2, 2.2.2.2 and 2.4.2.2: the document's answers
SINGLE_ANSWER = """{"code" : "SUCCESS", "data" : {"mobile": "0061422118000", "imsId": "20180392833833892100",
  "customImsId": "2018010709302911"}}"""
BATCH_ANSWER = """{"code" : "SUCCESS", "data" : [
  {"mobile": "0061422118000", "imsId": "2018010709302911", "customImsId": "2018010709302911"},
  {"mobile": "0061422118001", "imsId": "2018010709302912", "customImsId": "2018010709302912"}]}"""
REPORT_ANSWER = """{"code" : "SUCCESS", "data" : [
  {"mobile": "0061422118000", "imsId": "20180392833833891100", "customImsId": "1553885000011111",
   "state": "DELIVRD", "desc": "成功", "receiveTime": "2018-03-15 12:00:00", "submitTime": "2018-03-15 12:00:00"},
  {"mobile": "0061422118001", "imsId": "20180392833833891101", "customImsId": "1553885000011112",
   "state": "DELIVRD", "desc": "成功", "receiveTime": "2018-03-15 12:00:00", "submitTime": "2018-03-15 12:00:00"}]}"""
TWO = [Recipient("0061422118000", "2018010709302911"), Recipient("0061422118001", "2018010709302912")]


def spec(content: str | None = TEXT, **options: str) -> SendSpec:
    return SendSpec(kind="ims", content=content, options=options)


def ok(text: str) -> HttpResponse:
    return HttpResponse(200, text)


def test_single_request_is_the_documents_example_with_a_real_sign() -> None:
    request = build_send_request(ACCOUNT, spec(), [Recipient("0061422118000", "2018010709302911")], NOW)
    assert request.path == SINGLE and request.form is None
    assert request.json == {"appId": APP_ID, "timestamp": TS,
                            "sign": hashlib.md5(f"{APP_ID}{SECRET}{TS}".encode()).hexdigest(),
                            "mobile": "0061422118000", "content": TEXT, "customImsId": "2018010709302911"}
    assert json.dumps(request.json, ensure_ascii=False).encode("utf-8")  # a UTF-8 JSON body


def test_same_content_goes_to_batch_with_imses() -> None:
    request = build_send_request(ACCOUNT, spec(), TWO, NOW)
    assert request.path == BATCH
    assert request.json["content"] == TEXT
    assert request.json["imses"] == [{"mobile": "0061422118000", "customImsId": "2018010709302911"},
                                      {"mobile": "0061422118001", "customImsId": "2018010709302912"}]


def test_per_recipient_content_goes_to_personality() -> None:
    batch = [Recipient("0061422118000", "2018010709302911", TEXT),
             Recipient("0061422118001", "2018010709302912", "This is a personality message to Australia")]
    request = build_send_request(ACCOUNT, spec(None), batch, NOW)
    assert request.path == PERSONAL and "content" not in request.json
    assert request.json["imses"][1] == {"mobile": "0061422118001", "customImsId": "2018010709302912",
                                        "content": "This is a personality message to Australia"}


@pytest.mark.parametrize("size", [0, 301])
def test_batch_size_outside_1_to_300_is_refused_before_building(size: int) -> None:
    with pytest.raises(PermanentError) as caught:
        IMS.build_send(ACCOUNT, spec(), [Recipient(f"00614221{i:05d}", f"c{i}") for i in range(size)], NOW)
    assert caught.value.code == "BATCH_SIZE"


@pytest.mark.parametrize(("answer", "expected"), [
    (SINGLE_ANSWER, [("0061422118000", "2018010709302911", "20180392833833892100")]),
    (BATCH_ANSWER, [("0061422118000", "2018010709302911", "2018010709302911"),
                    ("0061422118001", "2018010709302912", "2018010709302912")]),
])
def test_send_answers_of_the_document(answer: str, expected: list[tuple[str, str, str]]) -> None:
    got = parse_send_response(ok(answer), TWO)
    assert [(a.mobile, a.custom_id, a.provider_msg_id) for a in got] == expected


def test_every_documented_code_has_a_family_and_unknown_codes_fall_back() -> None:
    documented = ["SUCCESS", "ERROR_APPID", "ERROR_PARAMS", "ERROR_CLIENT_IP", "ERROR_MOBILE_EMPTY",
                  "ERROR_MOBILE_NUMBER", "ERROR_MOBILE_ERROR", "ERROR_CONTENT_EMPTY", "ERROR_CUSTOM_IMSID",
                  "ERROR_LONG_CONTENT", "ERROR_TIMESTAMP", "ERROR_SIGN"]
    assert set(documented) <= set(CODE_FAMILIES) and set(documented) <= set(CODE_MESSAGES)
    assert IMS_CODES.error("SUCCESS") is None
    assert isinstance(IMS_CODES.error("ERROR_SOMETHING_NEW"), TransientError)


@pytest.mark.parametrize(("code", "family"), [
    ("ERROR_SIGN", AccountError), ("ERROR_APPID", AccountError), ("ERROR_CLIENT_IP", AccountError),
    ("ERROR_TIMESTAMP", TransientError), ("ERROR_MOBILE_ERROR", RecipientRejected),
    ("ERROR_CUSTOM_IMSID", PermanentError), ("ERROR_LONG_CONTENT", PermanentError),
    ("ERROR_MOBILE_NUMBER", PermanentError), ("ERROR_PARAMS", PermanentError), ("WHATEVER", TransientError),
])
def test_error_answers_raise_their_family(code: str, family: type) -> None:
    with pytest.raises(family) as caught:
        parse_send_response(ok(json.dumps({"code": code})), TWO)
    assert caught.value.code == code
    if family is AccountError:
        assert caught.value.reason == "credentials"


@pytest.mark.parametrize(("response", "family"), [
    (HttpResponse(200, "<html>gateway</html>"), AmbiguousError),  # the send may have gone through
    (HttpResponse(200, '{"data": []}'), AmbiguousError),
    (HttpResponse(404, "not found"), TransientError),
])
def test_unreadable_send_answers(response: HttpResponse, family: type) -> None:
    with pytest.raises(family):
        parse_send_response(response, TWO)


def test_report_answer_of_the_document() -> None:
    reports = parse_report_response(ok(REPORT_ANSWER))
    assert [(r.status, r.state, r.desc, r.provider_msg_id, r.custom_id, r.mobile) for r in reports] == [
        (MessageStatus.DELIVERED, "DELIVRD", "成功", "20180392833833891100", "1553885000011111", "0061422118000"),
        (MessageStatus.DELIVERED, "DELIVRD", "成功", "20180392833833891101", "1553885000011112", "0061422118001"),
    ]
    assert reports[0].reported_at == datetime(2018, 3, 15, 12, 0, tzinfo=BEIJING)
    assert reports[0].raw["submitTime"] == "2018-03-15 12:00:00"


@pytest.mark.parametrize(("state", "status"), [
    ("DELIVRD", MessageStatus.DELIVERED), ("TIMEOUT", MessageStatus.EXPIRED),
    ("FAIL_BALANCE", MessageStatus.FAILED), ("FAIL_MOBILE", MessageStatus.FAILED),
    ("FAIL_MOBILE_SUPPORT", MessageStatus.FAILED), ("FAIL_MOBILE_REPEAT", MessageStatus.FAILED),
    ("FAIL_BLACK_DICT", MessageStatus.FAILED), ("FAIL_RESPONSE", MessageStatus.FAILED),
    ("FAIL_UNKNOW", MessageStatus.FAILED), ("FAIL_SOMETHING_NEW", MessageStatus.FAILED),
    ("SENDING", MessageStatus.UNKNOWN),
])
def test_report_states(state: str, status: MessageStatus) -> None:
    assert IMS_STATES(state) == status


def test_undocumented_state_keeps_the_message_open() -> None:
    assert IMS_STATES.fallback == MessageStatus.UNKNOWN and EmayIms.report_states is IMS_STATES


def test_report_query_asks_for_500_and_no_more() -> None:
    request = build_report_request(ACCOUNT, NOW)
    assert request.path == "/inter/getIMSReport" and request.json["number"] == 500
    with pytest.raises(ValueError):
        build_report_request(ACCOUNT, NOW, 501)


def test_malformed_report_time_keeps_the_report() -> None:
    reports = parse_report_response(ok('{"code":"SUCCESS","data":[{"mobile":"0061422118000","imsId":"1",'
                                       '"state":"TIMEOUT","receiveTime":"yesterday"}]}'))
    assert reports[0].status == MessageStatus.EXPIRED and reports[0].reported_at is None


# ---- normalise + validate (what submission runs) ---------------------------------------------------
def accepted(raw: list, job: SendSpec = spec()) -> list[Recipient]:
    people = IMS.normalise(job, raw)
    IMS.validate(job, people)
    return people


def test_numbers_are_normalised_before_validation() -> None:
    people = accepted([Recipient("+61422118000", ""), Recipient("0061422118001", ""),
                       Recipient("61422118002", "")], spec(country="AU"))
    assert [p.mobile for p in people] == ["0061422118000", "0061422118001", "0061422118002"]


@pytest.mark.parametrize(("raw", "job", "field", "says"), [
    ([Recipient("+8613800138000", "")], spec(), "recipients[0].mobile", "domestic"),
    ([Recipient("0061422118000", ""), Recipient("+61 42211", "")], spec(), "recipients[1].mobile", "valid"),
    ([Recipient("0061422118000", "x" * 33)], spec(), "recipients[0].custom_id", "32"),
    ([Recipient("0061422118000", "")], spec(None), "content", "required"),
    ([Recipient("0061422118000", "")], spec("a" * 1001), "content", "1000"),
    ([Recipient("0061422118000", "", "hi"), Recipient("0061422118001", "")], spec(None),
     "recipients[1].content", "required"),
    ([Recipient("0061422118000", "")], spec(speed="fast"), "options.speed", "unknown option"),
    ([Recipient("0061422118000", "")], spec(country="Oz"), "options.country", "ISO"),
])
def test_bad_input_names_the_field(raw: list, job: SendSpec, field: str, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        accepted(raw, job)
    assert caught.value.field == field and says in caught.value.rule


def test_single_recipient_jobs_go_to_the_otp_queue() -> None:
    assert IMS.queue_for("ims", 1) == "otp"
    assert IMS.queue_for("ims", 2) == "bulk"
    assert IMS.max_batch(ACCOUNT, "ims") == 300
    assert IMS.has_balance_query is False
