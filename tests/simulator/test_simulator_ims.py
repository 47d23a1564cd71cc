"""The Emay international simulator over real HTTP: auth, every documented code, limits, reports, faults."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from providers.simulator import EmayApp, SimConfig
from tests.simulator.conftest import REPORT_DELAY_S, VOICE_APP, VOICE_KEY, SimClient, serving
from tests.simulator.conftest import signed as emay_signed

IMS_APP = "EUCP-EMY-SMS0-4SYGK"  # the document's example appId
IMS_KEY = "9988776655443322"
M1, M2 = "0061422118000", "0061422118001"  # the document's example mobiles


def signed(app_id: str = IMS_APP, key: str = IMS_KEY, *, offset_s: float = 0, **body) -> dict:
    """A body signed as the voice routes' forms are (the document's own app unless told)."""
    return emay_signed(app_id, key, offset_s=offset_s, **body)


class Ims(SimClient):
    def post(self, path: str, body: dict | None = None, **signed_body) -> dict:
        return self.http.post(self.url + path, json=body if body is not None else signed(**signed_body)).json()


@pytest.fixture(scope="module")
def ims_server() -> Iterator[Ims]:
    apps = {IMS_APP: EmayApp(IMS_KEY, "ims"), VOICE_APP: EmayApp(VOICE_KEY, "voice")}
    config = SimConfig(credentials={"emay": apps}, report_delay_s=REPORT_DELAY_S)
    with serving(config) as url:
        yield Ims(url)


@pytest.fixture
def ims(ims_server: Ims) -> Ims:
    return ims_server.reset()


def imses(n: int, *, content: str | None = None, tag: str = "c") -> list[dict]:
    items = [{"mobile": f"00614221{i:05d}", "customImsId": f"{tag}{i:07d}"} for i in range(n)]
    return [{**item, "content": content} for item in items] if content else items


def test_single_send_answers_the_documents_shape(ims: Ims) -> None:
    answer = ims.post("/inter/sendSingleIMS", mobile=M1, content="This is a text message to Australia",
                      customImsId="2018010709302911")
    assert answer["code"] == "SUCCESS"
    assert answer["data"]["mobile"] == M1 and answer["data"]["customImsId"] == "2018010709302911"
    assert len(answer["data"]["imsId"]) == 20


def test_batch_and_personality_answer_lists(ims: Ims) -> None:
    batch = ims.post("/inter/sendBatchIMS", content="hi", imses=imses(300))
    personal = ims.post("/inter/sendPersonalityIMS", imses=imses(2, content="yours", tag="p"))
    assert batch["code"] == personal["code"] == "SUCCESS"
    assert len(batch["data"]) == 300 and [d["mobile"] for d in personal["data"]] == ["0061422100000", "0061422100001"]
    stats = ims.control("GET", "/_sim/stats").json()
    assert stats["max_recipients_per_request"]["/inter/sendBatchIMS"] == 300 and stats["duplicates"] == 0


ERRORS = [
    ("/inter/sendSingleIMS", dict(content="hi"), "ERROR_MOBILE_EMPTY"),
    ("/inter/sendSingleIMS", dict(mobile="61422118000", content="hi"), "ERROR_MOBILE_ERROR"),
    ("/inter/sendSingleIMS", dict(mobile="008613800138000", content="hi"), "ERROR_MOBILE_ERROR"),
    ("/inter/sendSingleIMS", dict(mobile=M1), "ERROR_CONTENT_EMPTY"),
    ("/inter/sendSingleIMS", dict(mobile=M1, content="a" * 1001), "ERROR_LONG_CONTENT"),
    ("/inter/sendSingleIMS", dict(mobile=M1, content="hi", customImsId="x" * 33), "ERROR_CUSTOM_IMSID"),
    ("/inter/sendBatchIMS", dict(content="hi"), "ERROR_MOBILE_EMPTY"),
    ("/inter/sendBatchIMS", dict(content="hi", imses=imses(301)), "ERROR_MOBILE_NUMBER"),
    ("/inter/sendBatchIMS", dict(imses=imses(2)), "ERROR_CONTENT_EMPTY"),
    ("/inter/sendBatchIMS", dict(content="hi", imses="0061422118000"), "ERROR_PARAMS"),
    ("/inter/sendPersonalityIMS", dict(imses=imses(2)), "ERROR_CONTENT_EMPTY"),
    ("/inter/sendPersonalityIMS", dict(imses=imses(301, content="x")), "ERROR_MOBILE_NUMBER"),
    ("/inter/getIMSReport", dict(number=501), "ERROR_PARAMS"),
    ("/inter/getIMSReport", dict(number=0), "ERROR_PARAMS"),
]


@pytest.mark.parametrize(("path", "body", "code"), ERRORS)
def test_documented_error_codes(ims: Ims, path: str, body: dict, code: str) -> None:
    assert ims.post(path, **body) == {"code": code}
    assert ims.control("GET", "/_sim/requests").json() == []


@pytest.mark.parametrize(("make_body", "code"), [  # bodies made at run time: timestamps must be fresh
    (lambda: signed(key="wrong", mobile=M1, content="hi"), "ERROR_SIGN"),
    (lambda: signed(app_id="EUCP-NOBODY", mobile=M1, content="hi"), "ERROR_APPID"),
    (lambda: signed(VOICE_APP, VOICE_KEY, mobile=M1, content="hi"), "ERROR_APPID"),  # a voice appId
    (lambda: signed(offset_s=-600, mobile=M1, content="hi"), "ERROR_TIMESTAMP"),
    (lambda: {"appId": IMS_APP, "mobile": M1, "content": "hi"}, "ERROR_PARAMS"),
])
def test_authentication(ims: Ims, make_body, code: str) -> None:
    assert ims.post("/inter/sendSingleIMS", make_body()) == {"code": code}


def test_body_must_be_utf8_json(ims: Ims) -> None:
    answer = ims.http.post(ims.url + "/inter/sendSingleIMS", data=b"appId=x&sign=y").json()
    assert answer == {"code": "ERROR_PARAMS"}


def test_reports_are_handed_out_once_with_the_documents_fields(ims: Ims) -> None:
    ims.post("/inter/sendBatchIMS", content="hi", imses=imses(3))
    assert ims.post("/inter/getIMSReport", number=500)["data"] == []  # not ready yet
    time.sleep(REPORT_DELAY_S + 0.1)
    first = ims.post("/inter/getIMSReport", number=2)["data"]
    rest = ims.post("/inter/getIMSReport")["data"]
    assert len(first) == 2 and len(rest) == 1
    assert set(first[0]) == {"mobile", "imsId", "customImsId", "state", "desc", "submitTime", "receiveTime"}
    outcomes = ims.control("GET", "/_sim/outcomes").json()["by_custom_id"]
    assert {r["customImsId"]: r["state"] for r in first + rest} == outcomes


def test_repeated_mobile_and_empty_balance_fail_in_reports(ims: Ims) -> None:
    ims.post("/inter/sendBatchIMS", content="hi", imses=[{"mobile": M1, "customImsId": "a"},
                                                          {"mobile": M1, "customImsId": "b"}])
    ims.control("POST", "/_sim/balance", json={"app_id": IMS_APP, "balance": 0})
    assert ims.post("/inter/sendSingleIMS", mobile=M2, content="hi", customImsId="c")["code"] == "SUCCESS"
    outcomes = ims.control("GET", "/_sim/outcomes").json()["by_custom_id"]
    assert outcomes["b"] == "FAIL_MOBILE_REPEAT" and outcomes["c"] == "FAIL_BALANCE"


def test_faults_5xx_bad_mobiles_and_duplicates(ims: Ims) -> None:
    ims.control("POST", "/_sim/faults", json={"error_5xx_rate": 1.0})
    assert ims.http.post(ims.url + "/inter/sendSingleIMS", json=signed(mobile=M1, content="hi")).status_code == 503
    ims.control("POST", "/_sim/faults", json={"bad_mobiles": [M2]})
    assert ims.post("/inter/sendSingleIMS", mobile=M2, content="hi") == {"code": "ERROR_MOBILE_ERROR"}
    ims.control("DELETE", "/_sim/faults")
    for _ in range(2):
        ims.post("/inter/sendSingleIMS", mobile=M1, content="hi", customImsId="same")
    stats = ims.control("GET", "/_sim/stats").json()
    assert stats["duplicates"] == 1 and stats["http_5xx"] == 1 and stats["refused"]["ERROR_MOBILE_ERROR"] == 1


def test_stall_after_accept_records_then_answers_late(ims: Ims) -> None:
    ims.control("POST", "/_sim/faults", json={"stall_after_accept_rate": 1.0, "stall_s": 2})
    with pytest.raises(requests.ReadTimeout):
        ims.http.post(ims.url + "/inter/sendSingleIMS", json=signed(mobile=M1, content="hi", customImsId="s"),
                      timeout=0.5)
    assert ims.control("GET", "/_sim/outcomes").json()["by_custom_id"].keys() == {"s"}
