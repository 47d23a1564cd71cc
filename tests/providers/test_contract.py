"""The contract every registered provider keeps, parametrised over the registry: a new provider is checked
by adding one row to SAMPLES (and REPORT_PAGES when it has a report query or push)."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from models.statuses import MessageStatus
from providers.base import HttpResponse, Recipient, SendSpec
from providers.errors import AmbiguousError, PermanentError, ProviderError, TransientError
from providers.registry import PROVIDER_CLASSES, get_provider

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
GARBAGE = HttpResponse(200, "<<< not an answer at all >>>")

#: provider → (account fields, kind, content, options, a valid mobile)
SAMPLES = {
    "emay_voice": ({"app_id": "A", "secret_key": "0123456789abcdef"}, "notify", "您好", {}, "13800000000"),
    "emay_voice_sms": ({"app_id": "A", "secret_key": "0123456789abcdef"}, "voice_sms", "您好",
                       {"triggerConditions": "3", "keyContent": "1"}, "13800000000"),
    "emay_ims": ({"app_id": "A", "secret_key": "0123456789abcdef"}, "ims", "hello", {}, "0061422118000"),
    "ihuyi_mms": ({"api_id": "A", "api_key": "k", "product_id": 1001}, "mms", "会员日",
                  {"title": "t", "sign_name": "【互亿无线】"}, "13800000000"),
    "qyxs_sms": ({"userid": "1", "account": "a", "password": "p"}, "sms", "您好", {}, "13800000000"),
}

#: provider → an answer to a send carrying a code its document does not list
UNLISTED_CODE_ANSWERS = {
    "emay_voice": HttpResponse(200, '{"code": "ERROR_SOMETHING_NEW"}'),
    "emay_voice_sms": HttpResponse(200, '{"code": "ERROR_SOMETHING_NEW"}'),
    "emay_ims": HttpResponse(200, '{"code": "ERROR_SOMETHING_NEW"}'),
    "ihuyi_mms": HttpResponse(200, '{"code": "SOMETHING_NEW", "message": "?"}'),
    "qyxs_sms": HttpResponse(200, "<returnsms><returnstatus>Faild</returnstatus><message>新的错误</message>"
                                  "</returnsms>"),
}

#: provider → a page of reports (polled, or pushed for ihuyi) whose one state its document does not list
NEW_STATE = "SOMETHING_NEW"
REPORT_PAGES = {
    "emay_voice": '{"code": "SUCCESS", "data": [{"voiceId": "1", "customVoiceId": "c1", "mobile": "13800000000", '
                  f'"state": "{NEW_STATE}"}}]}}',
    "emay_voice_sms": '{"code": "SUCCESS", "data": [{"joinId": "1", "customJoinId": "c1", "mobile": "13800000000", '
                      f'"state": "{NEW_STATE}"}}]}}',
    "emay_ims": '{"code": "SUCCESS", "data": [{"imsId": "1", "customImsId": "c1", "mobile": "0061422118000", '
                f'"state": "{NEW_STATE}"}}]}}',
    "qyxs_sms": f"<returnsms><statusbox><mobile>13800000000</mobile><taskid>9</taskid><status>{NEW_STATE}</status>"
                "<receivetime>2026-11-30 08:00:00</receivetime><errorcode>X</errorcode></statusbox></returnsms>",
    "ihuyi_mms": f'{{"task_id": "9", "phone": "13800000000", "code": "{NEW_STATE}"}}',
}
#: documented exceptions to "an unknown state stays open": ihuyi 6.2 calls every code but DELIVERED a failure
UNKNOWN_STATE_STATUS = {"ihuyi_mms": MessageStatus.FAILED}

NAMES = [cls.name for cls in PROVIDER_CLASSES]


def account(name: str):
    """A parsed account of the provider."""
    fields, *_ = SAMPLES[name]
    return get_provider(name).account_type(name="acct", provider=name, base_url="http://127.0.0.1:9", **fields)


def spec_and_batch(name: str, size: int) -> tuple[SendSpec, list[Recipient]]:
    """A valid job spec and a batch of `size` distinct recipients."""
    _, kind, content, options, mobile = SAMPLES[name]
    batch = [Recipient(f"{mobile[:-5]}{i:05d}", f"c{i}") for i in range(size)]
    return SendSpec(kind=kind, content=content, options=options), batch


def test_every_registered_provider_has_a_sample_row():
    assert set(NAMES) == set(SAMPLES) == set(UNLISTED_CODE_ANSWERS) == set(REPORT_PAGES)


@pytest.mark.parametrize("name", NAMES)
def test_a_valid_job_validates_and_builds_a_request(name):
    provider = get_provider(name)
    spec, batch = spec_and_batch(name, 3)
    provider.validate(spec, provider.normalise(spec, batch))
    assert provider.build_send(account(name), spec, batch, NOW, request_id="r1").path


@pytest.mark.parametrize("name", NAMES)
def test_an_unreadable_send_answer_is_ambiguous(name):
    provider = get_provider(name)
    spec, batch = spec_and_batch(name, 2)
    with pytest.raises(AmbiguousError):
        provider.parse_send(spec, batch, GARBAGE)


@pytest.mark.parametrize("name", NAMES)
def test_an_unreadable_query_answer_is_transient(name):
    provider = get_provider(name)
    queries = [(provider.has_report_query, provider.parse_reports),
               (provider.has_balance_query, provider.parse_balance),
               (provider.has_inbound_query, provider.parse_inbound)]
    asked = [parse for has, parse in queries if has]
    assert asked or name == "ihuyi_mms" and not provider.has_report_query
    for parse in asked:
        with pytest.raises(TransientError):
            parse(GARBAGE)


@pytest.mark.parametrize("name", NAMES)
def test_an_unlisted_code_falls_back_to_a_family(name):
    provider = get_provider(name)
    spec, batch = spec_and_batch(name, 2)
    with pytest.raises(ProviderError) as caught:
        provider.parse_send(spec, batch, UNLISTED_CODE_ANSWERS[name])
    assert type(caught.value) is TransientError  # not accepted: a bounded retry is safe


@pytest.mark.parametrize("name", NAMES)
def test_an_unknown_report_state_keeps_the_providers_words(name):
    provider = get_provider(name)
    page = HttpResponse(200, REPORT_PAGES[name])
    if provider.has_report_query:
        reports = provider.parse_reports(page)
    else:
        (push,) = [p for p in provider.pushes.values() if p.carries == "reports"]
        reports = push.decode(account(name), {}, page.text.encode())
    (report,) = reports
    assert report.state == NEW_STATE
    assert report.status == UNKNOWN_STATE_STATUS.get(name, MessageStatus.UNKNOWN)
    assert provider.report_states(NEW_STATE) == report.status


@pytest.mark.parametrize("name", NAMES)
def test_a_batch_over_the_limit_is_refused_before_a_request_is_built(name):
    provider = get_provider(name)
    spec, _ = spec_and_batch(name, 1)
    limit = provider.kind(spec.kind).max_recipients
    _, batch = spec_and_batch(name, limit + 1)
    with pytest.raises(PermanentError) as caught:
        provider.build_send(account(name), spec, batch, NOW, request_id="r1")
    assert caught.value.code == "BATCH_SIZE"
    with pytest.raises(PermanentError):
        provider.build_send(account(name), spec, [], NOW, request_id="r1")


def documented_codes(seed_prefix: str) -> set[str]:
    """Every ERROR_* code a seed document names (FAIL_ERROR_VOICE is a report state, not a code)."""
    (path,) = SEEDS.glob(f"{seed_prefix}_*.txt")
    return set(re.findall(r"(?<![A-Z_])ERROR_[A-Z_]+", path.read_text(encoding="utf-8")))


def test_every_emay_voice_code_of_document_001_maps_to_a_family():
    from providers.emay.common import CODE_FAMILIES
    codes = documented_codes("001")
    assert len(codes) > 20 and codes <= set(CODE_FAMILIES), sorted(codes - set(CODE_FAMILIES))
    assert CODE_FAMILIES["SUCCESS"] is None


def test_every_emay_international_code_of_document_004_maps_to_a_family():
    from providers.emay.ims import CODE_FAMILIES
    codes = documented_codes("004")
    assert len(codes) > 8 and codes <= set(CODE_FAMILIES), sorted(codes - set(CODE_FAMILIES))


def test_ihuyi_documents_only_ok():
    from providers.ihuyi.common import error_for_code
    assert error_for_code("OK") is None


#: document 003's failure texts (DESIGN §5's reading of the scan) → the code we give each; 其他错误 is the fallback
QYXS_TEXTS = [("用户名或密码不能为空", "QYXS_AUTH"), ("用户名或密码错误", "QYXS_AUTH"),
              ("发送内容包含sql注入字符", "QYXS_SQL_CHARS"), ("短信号码不能为空", "QYXS_NO_MOBILE"),
              ("短信内容不能为空", "QYXS_NO_CONTENT"), ("包含非法字符", "QYXS_ILLEGAL_CONTENT"),
              ("对不起,您当前要发送的量大于您当前余额", "QYXS_BALANCE"), ("其他错误", "QYXS_ERROR")]


@pytest.mark.parametrize(("text", "code"), QYXS_TEXTS)
def test_every_qyxs_failure_text_maps_to_a_family(text, code):
    from providers.qyxs.common import error_for_message
    assert error_for_message(text).code == code
