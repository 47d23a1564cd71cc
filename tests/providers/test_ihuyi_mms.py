"""Table-driven tests of ihuyi MMS's pure functions, on the examples of document 002."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from models.statuses import MessageStatus
from msgrelay.cli.frames import sample_frames
from providers.base import BEIJING, Carries, HttpResponse, Recipient, SendSpec
from providers.errors import (
    AccountError, AmbiguousError, InvalidInput, PermanentError, RateLimited, RecipientRejected, TransientError,
)
from providers.ihuyi.common import CODE_FAMILIES, IhuyiAccount, error_for_code, public_params, sign
from providers.ihuyi.mms import (
    RECEIPT_STATES, IhuyiMms, build_balance_request, build_send_request, build_template_request,
    parse_balance_response, parse_mo_push, parse_receipt_push, parse_send_response, parse_template_push,
    parse_template_response, receipt_status,
)

API_ID = "2RYN7CQHL1M"  # the document's example api_id (1.5 / 2), its masked tail left off
API_KEY = "mms-key-3f9a77c2d1"
ACCOUNT = IhuyiAccount(name="mms", provider="ihuyi_mms", base_url="http://127.0.0.1:18080", api_id=API_ID,
                       api_key=API_KEY, product_id=1001)
NOW = datetime(2020, 8, 26, 16, 8, 14, tzinfo=BEIJING)  # the document's send_time example (3.3)
TS = 1598429294
RID = "7f1c0a8e-4b2d-4c55-9a61-1d2e3f405162"
PEOPLE = [Recipient("18800000000", "j-0"), Recipient("18800000001", "j-1")]  # the document's phones (3.3)
FRAMES = sample_frames()
SPEC = SendSpec(kind="mms", content=FRAMES, options={"title": "周末特惠", "sign_name": "【互亿无线】"})
# 4.2: the document's balance answer, verbatim
BALANCE_ANSWER = """{
    "code": "OK",
    "message": "請求成功",
    "data": [
        {"product_id": 1018, "product_name": "營銷彩信-房產類", "balance": 188888},
        {"product_id": 1020, "product_name": "營銷彩信-商超類", "balance": 200000}
    ]
}"""


def answer(payload, status: int = 200) -> HttpResponse:
    return HttpResponse(status, payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False))


@pytest.mark.parametrize("api_id, key, rid, ts", [
    (API_ID, API_KEY, RID, TS),
    (API_ID, API_KEY, RID, str(TS)),
    ("2RYN7CQHL1M*****", "k", "r", 1700000000),
    (API_ID, "密钥", "请求1", TS),  # UTF-8 before md5
])
def test_signature_is_md5_of_the_sorted_public_parameters_lowercase(api_id, key, rid, ts):
    text = f"api_id={api_id}&api_key={key}&request_id={rid}&timestamp={ts}"
    expected = hashlib.md5(text.encode("utf-8")).hexdigest()
    assert sign(api_id, key, rid, ts) == expected
    assert expected == expected.lower() and len(expected) == 32


def test_signature_of_a_known_example():
    assert sign(API_ID, API_KEY, RID, TS) == "db66424f91c1c3cf9c971124b63874bb"


@pytest.mark.parametrize("now", [NOW, NOW.astimezone(timezone.utc), NOW.astimezone(timezone.utc).replace(tzinfo=None)])
def test_public_params_carry_unix_seconds_whatever_the_zone_and_never_the_key(now):
    params = public_params(ACCOUNT, now, RID)
    assert params == {"api_id": API_ID, "timestamp": TS, "request_id": RID,
                      "signature": sign(API_ID, API_KEY, RID, TS)}
    assert API_KEY not in json.dumps(params)


def test_a_fresh_request_id_when_none_is_given():
    first, second = public_params(ACCOUNT, NOW), public_params(ACCOUNT, NOW)
    assert first["request_id"] != second["request_id"]


def test_batch_send_body():
    request = build_send_request(ACCOUNT, SPEC, PEOPLE, NOW, RID)
    assert request.path == "/mms/v1/batchSend" and request.form is None
    body = request.json
    assert body == {"api_id": API_ID, "timestamp": TS, "request_id": RID, "signature": sign(API_ID, API_KEY, RID, TS),
                    "product_id": 1001, "phone": ["18800000000", "18800000001"], "sign_name": "【互亿无线】",
                    "title": "周末特惠", "content": FRAMES}
    assert API_KEY not in json.dumps(body, ensure_ascii=False)


@pytest.mark.parametrize("spec, expected", [
    (SendSpec("mms", None, {"template_id": "5001"}), {"template_id": 5001}),
    (SendSpec("mms", None, {"template_id": 5001, "sign_name": "【互亿无线】"}),
     {"template_id": 5001, "sign_name": "【互亿无线】"}),
    (SendSpec("mms", "你好", {"title": "t", "sign_name": "【互亿无线】", "product_id": "1020"}),
     {"product_id": 1020, "content": [[{"con_type": "text", "ext_type": "txt", "data": "你好"}]]}),
    (SendSpec("mms", "你好", {"title": "t", "sign_name": "【互亿无线】"}, send_at=NOW + timedelta(days=1)),
     {"send_time": "2020-08-27 16:08:14"}),
    (SendSpec("mms", "你好", {"title": "t", "sign_name": "【互亿无线】"},
              send_at=(NOW + timedelta(hours=2)).astimezone(timezone.utc)), {"send_time": "2020-08-26 18:08:14"}),
])
def test_batch_send_variants(spec, expected):
    body = build_send_request(ACCOUNT, spec, PEOPLE, NOW, RID).json
    assert {k: body.get(k) for k in expected} == expected
    assert ("content" in body) != ("template_id" in body)
    if "send_time" not in expected:
        assert "send_time" not in body


def test_a_send_time_already_past_is_left_out():
    spec = SendSpec("mms", "你好", {"title": "t", "sign_name": "【互亿无线】"}, send_at=NOW - timedelta(seconds=1))
    assert "send_time" not in build_send_request(ACCOUNT, spec, PEOPLE, NOW, RID).json


@pytest.mark.parametrize("n", [0, 10_001])
def test_batch_send_refuses_more_than_10000_phones(n):
    with pytest.raises(PermanentError) as exc:
        IhuyiMms().build_send(ACCOUNT, SPEC, [Recipient(f"188{i:08d}", f"c{i}") for i in range(n)], NOW,
                              request_id=RID)
    assert exc.value.code == "BATCH_SIZE"


def test_ok_answer_accepts_every_phone_under_the_task_id():
    accepted = parse_send_response(answer({"task_id": "T20200826", "code": "OK", "message": "提交成功"}), PEOPLE)
    assert [(a.mobile, a.custom_id, a.provider_msg_id, a.task_id) for a in accepted] == [
        ("18800000000", "j-0", "T20200826:18800000000", "T20200826"),
        ("18800000001", "j-1", "T20200826:18800000001", "T20200826")]


@pytest.mark.parametrize("code, family", [
    ("ERROR_API_ID", AccountError), ("ERROR_SIGNATURE", AccountError), ("ERROR_PRODUCT_ID", AccountError),
    ("ERROR_BALANCE", AccountError), ("ERROR_TIMESTAMP", TransientError), ("ERROR_OVER_SPEED", RateLimited),
    ("ERROR_PHONE", RecipientRejected), ("ERROR_PHONE_NUMBER", PermanentError), ("ERROR_CONTENT", PermanentError),
    ("ERROR_SIGN_NAME", PermanentError), ("ERROR_TEMPLATE", PermanentError), ("ERROR_PARAMS", PermanentError),
    # codes we have never seen: by their words, else transient (safe: a retry reuses the request_id)
    ("INSUFFICIENT_BALANCE", AccountError), ("INVALID_SIGNATURE", AccountError), ("IP_NOT_ALLOWED", AccountError),
    ("RATE_LIMIT", RateLimited), ("BAD_TEMPLATE", PermanentError), ("SHIPPING", TransientError),
    ("E1234", TransientError),
])
def test_error_codes_map_to_families(code, family):
    with pytest.raises(family) as exc:
        parse_send_response(answer({"code": code, "message": "说明"}), PEOPLE)
    assert exc.value.code == code and exc.value.message == "说明"


def test_every_listed_code_has_a_family_and_only_ok_is_success():
    assert [c for c, f in CODE_FAMILIES.items() if f is None] == ["OK"]
    for code in CODE_FAMILIES:
        assert (error_for_code(code) is None) == (code == "OK")
    balance = error_for_code("ERROR_BALANCE")
    assert isinstance(balance, AccountError) and balance.reason == "balance"


@pytest.mark.parametrize("response, family", [
    (HttpResponse(200, "<html>gateway</html>"), AmbiguousError),  # may have been accepted
    (HttpResponse(200, json.dumps({"message": "no code"})), AmbiguousError),
    (HttpResponse(200, json.dumps({"code": "OK"})), AmbiguousError),  # accepted, but no task_id to match by
    (HttpResponse(404, "Not Found"), TransientError),  # refused in front of ihuyi
    (HttpResponse(200, "[1, 2]"), AmbiguousError),
])
def test_unreadable_send_answers(response, family):
    with pytest.raises(family):
        parse_send_response(response, PEOPLE)


def test_the_documents_balance_answer_is_one_figure_per_product_with_its_name():
    balances = parse_balance_response(answer(BALANCE_ANSWER))
    assert [(b.product, b.amount) for b in balances] == [("1018 營銷彩信-房產類", Decimal("188888")),
                                                          ("1020 營銷彩信-商超類", Decimal("200000"))]
    assert balances[0].raw == {"product_id": 1018, "product_name": "營銷彩信-房產類", "balance": 188888}


@pytest.mark.parametrize("payload, family", [
    ({"code": "OK", "data": [{"product_id": 1, "balance": "lots"}]}, TransientError),
    ({"code": "OK", "data": {"balance": 1}}, TransientError),
    ({"code": "ERROR_SIGNATURE"}, AccountError),
    ("not json", TransientError),
])
def test_bad_balance_answers(payload, family):
    with pytest.raises(family):
        parse_balance_response(answer(payload))


def test_balance_request_is_the_public_parameters_only():
    request = build_balance_request(ACCOUNT, NOW)
    assert request.path == "/mms/v1/balance" and set(request.json) == {"api_id", "timestamp", "request_id", "signature"}


def test_template_create_request_and_answer():
    request = build_template_request(ACCOUNT, NOW, title="双十一", content=FRAMES, sign_name="【互亿无线】",
                                     purpose="会员营销")
    body = request.json
    assert request.path == "/mms/v1/templateCreate"
    assert {k: body[k] for k in ("title", "content", "sign_name", "purpose")} == {
        "title": "双十一", "content": FRAMES, "sign_name": "【互亿无线】", "purpose": "会员营销"}
    assert body["signature"] == sign(API_ID, API_KEY, body["request_id"], TS)
    assert parse_template_response(answer({"template_id": 5001, "code": "OK", "message": "提交成功"})) == "5001"
    with pytest.raises(PermanentError):
        parse_template_response(answer({"code": "ERROR_CONTENT", "message": "彩信内容错误"}))


# 6.2 / 7.2 / 8.2: the fields of each push, with the document's time format
RECEIPT = {"task_id": "T1", "phone": "18800000000", "code": "DELIVERED", "message": "用户接收成功",
           "send_time": "2020-08-26 16:08:14", "report_time": "2020-08-26 16:08:20"}


@pytest.mark.parametrize("body", [RECEIPT, [RECEIPT], {"data": [RECEIPT]}])
def test_receipt_push_shapes(body):
    [report] = parse_receipt_push(json.dumps(body, ensure_ascii=False).encode())
    assert report.status == MessageStatus.DELIVERED and report.state == "DELIVERED"
    assert report.provider_msg_id == "T1:18800000000" and report.custom_id is None
    assert report.reported_at == datetime(2020, 8, 26, 16, 8, 20, tzinfo=BEIJING)
    assert report.desc == "用户接收成功" and report.raw == RECEIPT


@pytest.mark.parametrize("code, status", [("DELIVERED", MessageStatus.DELIVERED), ("UNDELIV", MessageStatus.FAILED),
                                          ("EXPIRED", MessageStatus.FAILED), ("MK:0001", MessageStatus.FAILED),
                                          (None, MessageStatus.UNKNOWN), ("", MessageStatus.UNKNOWN)])
def test_receipt_codes(code, status):
    [report] = parse_receipt_push(json.dumps({**RECEIPT, "code": code}).encode())
    assert report.status == status and report.state == (code or "")


@pytest.mark.parametrize("code, status", [("DELIVERED", MessageStatus.DELIVERED), ("UNDELIV", MessageStatus.FAILED),
                                          ("MK:0001", MessageStatus.FAILED), (None, MessageStatus.UNKNOWN)])
def test_receipt_state_map(code, status):
    assert receipt_status(code) == status
    assert RECEIPT_STATES.fallback == MessageStatus.FAILED and IhuyiMms.report_states is RECEIPT_STATES


def test_provider_declares_its_three_pushes():
    provider = IhuyiMms()
    assert provider.push_path == "ihuyi"
    assert {segment: push.carries for segment, push in provider.pushes.items()} == {
        "receipt": Carries.REPORTS, "mo": Carries.INBOUND, "template": Carries.TEMPLATE_AUDITS}
    body = json.dumps(RECEIPT, ensure_ascii=False).encode()
    assert provider.pushes["receipt"].decode(ACCOUNT, {}, body) == parse_receipt_push(body)


@pytest.mark.parametrize("body, field", [
    (b"\xff\xfe", "body"), (b"not json", "body"), (b"[1, 2]", "body"),
    (json.dumps({**RECEIPT, "task_id": ""}).encode(), "body[0].task_id"),
    (json.dumps([RECEIPT, {"task_id": "T1"}]).encode(), "body[1].phone"),
])
def test_bad_receipt_pushes(body, field):
    with pytest.raises(InvalidInput) as exc:
        parse_receipt_push(body)
    assert exc.value.field == field


def test_a_malformed_time_does_not_lose_the_receipt():
    [report] = parse_receipt_push(json.dumps({**RECEIPT, "report_time": "yesterday"}).encode())
    assert report.reported_at is None and report.status == MessageStatus.DELIVERED


def test_mo_push():
    body = {"task_id": "T1", "phone": "18800000000", "content": "好的", "dest_code": "106901234",
            "send_time": "2020-08-26 16:08:14", "receive_time": "2020-08-26 16:10:00"}
    [item] = parse_mo_push(json.dumps(body, ensure_ascii=False).encode())
    assert (item.mobile, item.content, item.dest_code, item.task_id) == ("18800000000", "好的", "106901234", "T1")
    assert item.received_at == datetime(2020, 8, 26, 16, 10, tzinfo=BEIJING)
    with pytest.raises(InvalidInput):
        parse_mo_push(json.dumps({**body, "content": None}).encode())


@pytest.mark.parametrize("body, expected", [
    ({"template_id": 5001, "code": "SUCCESS", "message": "审核通过"}, [("5001", "SUCCESS", "审核通过")]),
    ([{"template_id": 5001, "code": "FAIL", "message": "含违规内容"}], [("5001", "FAIL", "含违规内容")]),
    ({"template_id": "5002", "code": "FAIL"}, [("5002", "FAIL", None)]),
])
def test_template_push(body, expected):
    audits = parse_template_push(json.dumps(body, ensure_ascii=False).encode())
    assert [(a.template_id, a.code, a.message) for a in audits] == expected
    with pytest.raises(InvalidInput):
        parse_template_push(b'{"code": "SUCCESS"}')


OK_OPTS = {"title": "周末特惠", "sign_name": "【互亿无线】"}


@pytest.mark.parametrize("content, options, recipients, field, words", [
    (FRAMES, {"title": "t"}, PEOPLE, "options.sign_name", "is required when no template_id"),
    (FRAMES, {**OK_OPTS, "sign_name": "互亿无线"}, PEOPLE, "options.sign_name", "【】"),
    (FRAMES, {"sign_name": "【互亿无线】"}, PEOPLE, "options.title", "is required"),
    (None, OK_OPTS, PEOPLE, "content", "is required"),
    (FRAMES, {**OK_OPTS, "template_id": 5001}, PEOPLE, "content", "either content or options.template_id"),
    (None, {"template_id": "abc"}, PEOPLE, "options.template_id", "positive integer"),
    (None, {"template_id": 0}, PEOPLE, "options.template_id", "positive integer"),
    (FRAMES, {**OK_OPTS, "product_id": True}, PEOPLE, "options.product_id", "positive integer"),
    (FRAMES, {**OK_OPTS, "send_time": "2030-01-01 00:00:00"}, PEOPLE, "options.send_time", "unknown option"),
    (FRAMES, OK_OPTS, [Recipient("18800000000", "", "hi")], "recipients[0].content", "same content"),
    (FRAMES, OK_OPTS, [Recipient("18800000000", "a"), Recipient("18800000000", "b")], "recipients[1].mobile",
     "listed twice"),
    (FRAMES, OK_OPTS, [Recipient("1880000000", "")], "recipients[0].mobile", "mainland"),
    (FRAMES, OK_OPTS, [], "recipients", "at least one"),
])
def test_validate_send_refusals(content, options, recipients, field, words):
    with pytest.raises(InvalidInput) as exc:
        IhuyiMms().validate(SendSpec("mms", content, options), recipients)
    assert exc.value.field == field and words in exc.value.rule


@pytest.mark.parametrize("spec", [
    SPEC,
    SendSpec("mms", "纯文字彩信", OK_OPTS),
    SendSpec("mms", None, {"template_id": 5001}),
    SendSpec("mms", None, {"template_id": "5001", "title": "t", "sign_name": "【互亿无线】", "product_id": 1020}),
])
def test_validate_send_accepts(spec):
    IhuyiMms().validate(spec, PEOPLE)


def test_precheck_applies_the_accounts_size_cap():
    big = [[{"con_type": "text", "ext_type": "txt", "data": "字" * 120_000}]]  # 360,000 bytes of UTF-8
    provider = IhuyiMms()
    with pytest.raises(InvalidInput) as exc:
        provider.precheck(ACCOUNT, SendSpec("mms", big, OK_OPTS))
    assert exc.value.field == "content" and "at most 300 KB" in exc.value.rule
    provider.precheck(ACCOUNT.model_copy(update={"mms_max_kb": 500}), SendSpec("mms", big, OK_OPTS))


def test_provider_declares_its_limits_and_flow_flags():
    provider = IhuyiMms()
    assert provider.kinds["mms"].max_recipients == 10_000 and provider.kinds["mms"].endpoint == "/mms/v1/batchSend"
    assert provider.idempotent_request_id and provider.native_schedule and not provider.has_report_query
    assert provider.max_batch(ACCOUNT, "mms") == 10_000
    assert provider.build_send(ACCOUNT, SPEC, PEOPLE, NOW, request_id=RID).json["request_id"] == RID
