"""Faults that hit a send after the provider accepted it, for every vendor's send endpoints, over real HTTP:
`reset_after_accept_rate` (recorded, then the TCP connection reset) and `answer_delay_s` (recorded, then
answered late); and how every fault is drawn and counted."""
from __future__ import annotations

import hashlib
import http.client
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from msgrelay.cli.frames import sample_frames
from providers.simulator import EmayApp, SimConfig
from providers.simulator.ihuyi import IhuyiApp
from providers.simulator.qyxs import QyxsUser
from tests.simulator.conftest import (
    HELD_LONG_S, JOIN_APP, JOIN_KEY, REPORT_DELAY_S, VOICE_APP, VOICE_KEY, SimClient, eventually, serving, signed,
)

IMS_APP, IMS_KEY = "EUCP-EMY-SMS0-4SYGK", "9988776655443322"
QYXS_LOGIN = {"userid": "12", "account": "smsuser", "password": "sms-pass"}
MMS_ID, MMS_KEY = "2RYN7CQHL1M", "sim-ihuyi-key-1"
M1, M2 = "18001098901", "18001098902"
FRAMES = sample_frames()


def mms_signed(request_id: str, **fields: Any) -> dict:
    """ihuyi's public parameters, signed here independently of the simulator."""
    ts = int(time.time())
    sig = hashlib.md5(f"api_id={MMS_ID}&api_key={MMS_KEY}&request_id={request_id}&timestamp={ts}".encode()).hexdigest()
    return {"api_id": MMS_ID, "timestamp": ts, "request_id": request_id, "signature": sig, **fields}


def voice_notify(tag: str) -> dict:
    return {"data": signed(VOICE_APP, VOICE_KEY, mobiles=f"{M1},{M2}", content="hello",
                           customVoiceIds=f"{tag}-1,{tag}-2")}


def ims_batch(tag: str, *, personal: bool = False) -> dict:
    extra = {"content": "yours"} if personal else {}
    imses = [{"mobile": f"00614221180{i:02d}", "customImsId": f"{tag}-{i}", **extra} for i in range(2)]
    return {"json": signed(IMS_APP, IMS_KEY, imses=imses, **({} if personal else {"content": "hi"}))}


def mms_send(tag: str) -> dict:
    return {"json": mms_signed(tag, product_id=1001, phone=[M1, M2], sign_name="【互亿无线】", title="周末特惠",
                               content=FRAMES)}


def emay_ok(answer: requests.Response) -> bool:
    return answer.json()["code"] == "SUCCESS"


@dataclass(frozen=True)
class Send:
    """One vendor's send endpoint: a valid request (unique by `tag`), how its success reads, how many
    recipients it carries, and whether the provider de-duplicates a repeat of it (ihuyi's request_id)."""

    path: str
    request: Callable[[str], dict]
    ok: Callable[[requests.Response], bool]
    recipients: int
    dedup: bool = False


SENDS = [
    Send("/voice/send", voice_notify, emay_ok, 2),
    Send("/voice/sendCTCode", voice_notify, emay_ok, 2),
    Send("/voice/sendVFCode", lambda tag: {"data": signed(VOICE_APP, VOICE_KEY, mobile=M1, content="1234",
                                                          customVoiceId=tag)}, emay_ok, 1),
    Send("/join/send", lambda tag: {"data": signed(JOIN_APP, JOIN_KEY, mobiles=M1, voiceContent="1234",
                                                   customJoinIds=tag, triggerConditions="3", keyContent="1")},
         emay_ok, 1),
    Send("/inter/sendSingleIMS", lambda tag: {"json": signed(IMS_APP, IMS_KEY, mobile="0061422118000", content="hi",
                                                             customImsId=tag)}, emay_ok, 1),
    Send("/inter/sendBatchIMS", ims_batch, emay_ok, 2),
    Send("/inter/sendPersonalityIMS", lambda tag: ims_batch(tag, personal=True), emay_ok, 2),
    Send("/sms.aspx", lambda tag: {"data": {**QYXS_LOGIN, "action": "send", "mobile": f"{M1},{M2}",
                                            "content": f"您好 {tag}"}},
         lambda answer: "<returnstatus>Success</returnstatus>" in answer.text, 2),
    Send("/mms/v1/batchSend", mms_send, lambda answer: answer.json()["code"] == "OK", 2, dedup=True),
]
SEND = {send.path: send for send in SENDS}
# requests the faults after acceptance leave alone: report and balance queries, and a refused send
UNTOUCHED = [
    ("/voice/getReport", lambda: {"data": signed(VOICE_APP, VOICE_KEY)}, emay_ok),
    ("/join/getReport", lambda: {"data": signed(JOIN_APP, JOIN_KEY)}, emay_ok),
    ("/inter/getIMSReport", lambda: {"json": signed(IMS_APP, IMS_KEY)}, emay_ok),
    ("/statusApi.aspx", lambda: {"data": {**QYXS_LOGIN, "action": "query"}},
     lambda answer: "<returnsms>" in answer.text),
    ("/mms/v1/balance", lambda: {"json": mms_signed(uuid.uuid4().hex)}, lambda answer: answer.json()["code"] == "OK"),
    ("/voice/send", lambda: {"data": {**voice_notify("refused")["data"], "sign": "0" * 32}},
     lambda answer: answer.json() == {"code": "ERROR_SIGN"}),
]


class AllVendors(SimClient):
    def send(self, path: str, request: dict, **kw: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=kw.pop("timeout", 10), **request, **kw)

    def stats(self) -> dict:
        return self.control("GET", "/_sim/stats").json()

    def records(self) -> list[dict]:
        return self.control("GET", "/_sim/requests").json()

    def faults(self, **faults: Any) -> None:
        self.control("POST", "/_sim/faults", json=faults)


@pytest.fixture(scope="module")
def server() -> Iterator[AllVendors]:
    config = SimConfig(credentials={
        "emay": {VOICE_APP: EmayApp(VOICE_KEY, "voice"), JOIN_APP: EmayApp(JOIN_KEY, "join"),
                 IMS_APP: EmayApp(IMS_KEY, "ims")},
        "qyxs": {"12": QyxsUser("smsuser", "sms-pass")},
        "ihuyi": {MMS_ID: IhuyiApp(MMS_KEY)},
    }, report_delay_s=REPORT_DELAY_S)
    with serving(config) as url:
        yield AllVendors(url)


@pytest.fixture
def sim(server: AllVendors) -> Iterator[AllVendors]:
    server.reset()
    yield server
    server.reset()  # releases any answer a failed test left held


def held(sim: AllVendors, path: str) -> list[dict]:
    return [h for h in sim.stats()["answers_held"] if h["endpoint"] == path]


@pytest.mark.parametrize("send", SENDS, ids=[s.path for s in SENDS])
def test_reset_after_accept_drops_the_connection_and_keeps_the_request(sim: AllVendors, send: Send) -> None:
    # given every accepted send is answered with a connection reset
    sim.faults(reset_after_accept_rate=1)
    request = send.request(f"r{uuid.uuid4().hex[:8]}")
    # when the same request is sent twice
    for _ in range(2):
        with pytest.raises(requests.ConnectionError) as caught:
            sim.send(send.path, request)
        # then the client sees the connection dropped at once: no answer, and not a timeout
        assert not isinstance(caught.value, requests.Timeout)
        cause = caught.value.args[0].args[-1]
        assert isinstance(cause, (ConnectionResetError, http.client.RemoteDisconnected)), repr(caught.value)
    # and the provider kept what it accepted: one record per try, or one in all where it de-duplicates
    records = sim.records()
    assert [(r["endpoint"], r["faults"]) for r in records] == [(send.path, ["reset_after_accept"])] * (
        1 if send.dedup else 2)
    stats = sim.stats()
    assert stats["faults"] == {"reset_after_accept": {send.path: 2}}
    assert stats["accepted_requests"] == {send.path: len(records)}
    assert stats["duplicates"] == (0 if send.dedup else send.recipients)
    # and once the fault is gone the simulator answers normally
    sim.control("DELETE", "/_sim/faults")
    assert send.ok(sim.send(send.path, send.request("after")))


def test_a_repeated_request_id_reset_again_then_answered_with_the_first_task_id(sim: AllVendors) -> None:
    sim.faults(reset_after_accept_rate=1)
    request = mms_send("rid-reset")
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            sim.send("/mms/v1/batchSend", request)
    sim.control("DELETE", "/_sim/faults")
    answer = sim.send("/mms/v1/batchSend", request).json()
    [record] = sim.records()
    assert answer["task_id"] == record["recipients"][0]["provider_id"]  # the answer the resets hid
    log = sim.control("GET", "/_sim/ihuyi/requests").json()
    assert [entry["duplicate"] for entry in log] == [False, True, True]


@pytest.mark.parametrize("send", SENDS, ids=[s.path for s in SENDS])
def test_answer_delay_records_first_and_answers_later(sim: AllVendors, send: Send) -> None:
    # given answers are held long after acceptance
    sim.faults(answer_delay_s=HELD_LONG_S)
    answers: list[requests.Response] = []
    client = threading.Thread(target=lambda: answers.append(sim.send(send.path, send.request("late"), timeout=30)))
    # when a send arrives
    client.start()
    # then it is recorded while its answer is still held
    [hold] = eventually(lambda: held(sim, send.path), "the answer held")
    [record] = sim.records()
    assert hold["record_ids"] == [record["id"]] and record["faults"] == ["answer_delay"]
    assert client.is_alive() and not answers
    assert sim.stats()["faults"] == {"answer_delay": {send.path: 1}}
    # and replacing the faults releases the answer: the provider's normal acceptance
    sim.control("DELETE", "/_sim/faults")
    client.join(timeout=20)
    assert not client.is_alive() and send.ok(answers[0])
    assert sim.stats()["answers_held"] == []


def test_answer_delay_holds_the_answer_at_least_that_long(sim: AllVendors) -> None:
    sim.faults(answer_delay_s=0.5)
    started = time.monotonic()
    assert emay_ok(sim.send("/voice/sendVFCode", SEND["/voice/sendVFCode"].request("slow")))
    assert time.monotonic() - started >= 0.5  # a lower bound: a loaded machine only makes it longer


def test_a_record_says_when_its_request_arrived_before_the_injected_latency(sim: AllVendors) -> None:
    # given every request waits 1 s before it is read
    sim.faults(latency_s=1.0)
    posted = time.time()
    # when a send arrives
    assert emay_ok(sim.send("/voice/sendVFCode", SEND["/voice/sendVFCode"].request("arrival")))
    # then its record carries both times: arrival first (what "reached the provider" means), acceptance after
    [record] = sim.records()
    assert posted <= record["arrived_at"] < posted + 1.0 <= record["at"]


CLIENT = ("import sys, requests; requests.post(sys.argv[1], data=sys.stdin.buffer.read(), timeout=60, "
          "headers={'Content-Type': sys.argv[2]})")


@pytest.mark.parametrize("send", SENDS, ids=[s.path for s in SENDS])
def test_a_client_killed_while_its_answer_is_delayed_leaves_a_request_the_provider_has(sim: AllVendors,
                                                                                       send: Send) -> None:
    # given answers held after acceptance, and a client process sending one request
    sim.faults(answer_delay_s=HELD_LONG_S)
    prepared = requests.Request("POST", sim.url + send.path, **send.request("killed")).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    client = subprocess.Popen([sys.executable, "-c", CLIENT, prepared.url, prepared.headers["Content-Type"]],
                              stdin=subprocess.PIPE)
    client.stdin.write(body)
    client.stdin.close()
    # when the client is SIGKILLed while the provider holds its answer
    eventually(lambda: held(sim, send.path), "the answer held")
    client.kill()
    client.wait(timeout=10)
    sim.control("DELETE", "/_sim/faults")
    # then the provider has the request, and answering the dead client breaks nothing
    eventually(lambda: not sim.stats()["answers_held"], "the held answer released")
    [record] = sim.records()
    assert record["endpoint"] == send.path and record["faults"] == ["answer_delay"]
    assert len(record["recipients"]) == send.recipients
    assert send.ok(sim.send(send.path, send.request("next")))


@pytest.mark.parametrize("path, request_, ok", UNTOUCHED, ids=[u[0] for u in UNTOUCHED])
def test_faults_after_accept_leave_queries_and_refusals_alone(sim: AllVendors, path: str, request_, ok) -> None:
    sim.faults(reset_after_accept_rate=1, answer_delay_s=HELD_LONG_S)
    assert ok(sim.send(path, request_()))  # answered at once: neither reset nor held
    assert sim.stats()["faults"] == {} and sim.records() == []


def test_draws_follow_each_endpoints_own_requests(sim: AllVendors) -> None:
    # the same seed gives an endpoint the same faults, whatever other endpoints were asked meanwhile
    def codes(*, interleave: bool) -> list[int]:
        sim.faults(error_5xx_rate=0.5, seed=5)
        out = []
        for _ in range(20):
            if interleave:
                sim.send("/voice/getReport", {"data": signed(VOICE_APP, VOICE_KEY)})
            out.append(sim.send("/voice/getBalance", {"data": signed(VOICE_APP, VOICE_KEY, balance=True)}).status_code)
        return out

    alone, mixed = codes(interleave=False), codes(interleave=True)
    assert alone == mixed and {200, 503} == set(alone)
    by_endpoint = sim.stats()["faults"]["error_5xx"]
    assert by_endpoint["/voice/getBalance"] == 2 * alone.count(503) and by_endpoint["/voice/getReport"] > 0


def test_every_fault_is_counted_by_the_endpoint_it_hit(sim: AllVendors) -> None:
    sim.faults(error_5xx_rate=1)
    assert sim.send("/voice/getReport", {"data": signed(VOICE_APP, VOICE_KEY)}).status_code == 503
    sim.faults(over_speed_rate=1)
    assert sim.send("/voice/send", voice_notify("o")).json() == {"code": "ERROR_OVER_SPEED"}
    assert sim.send("/mms/v1/batchSend", mms_send("o")).json()["code"] == "ERROR_OVER_SPEED"
    sim.faults(stall_after_accept_rate=1, stall_s=HELD_LONG_S)
    with pytest.raises(requests.ReadTimeout):
        sim.send("/sms.aspx", SEND["/sms.aspx"].request("s"), timeout=0.5)
    [hold] = eventually(lambda: held(sim, "/sms.aspx"), "the stalled answer held")
    stats = sim.stats()
    assert stats["faults"] == {"error_5xx": {"/voice/getReport": 1},
                               "over_speed": {"/voice/send": 1, "/mms/v1/batchSend": 1},
                               "stall_after_accept": {"/sms.aspx": 1}}
    assert stats["http_5xx"] == 1 and stats["refused"] == {"ERROR_OVER_SPEED": 2}
    [record] = sim.records()
    assert hold["record_ids"] == [record["id"]] and record["faults"] == ["stall_after_accept"]
    sim.control("POST", "/_sim/reset")  # a reset releases the stalled answer too
    eventually(lambda: not sim.stats()["answers_held"], "the stalled answer released")
