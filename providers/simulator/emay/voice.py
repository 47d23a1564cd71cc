"""Emay voice (/voice/*) and voice-SMS (/join/*) as the document 001 (V3.0.1) describes them.

Pure functions validate a request's parameters and return the document's code (as Refused); the router at
the bottom applies faults, records what it accepts and answers the documented JSON shapes.  Authentication
is ``common.check_auth``.  This is an independent reading of the document: nothing here is shared with the
client modules.
"""
from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from functools import lru_cache, partial

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from providers.simulator.base import BEIJING, json_off_the_loop, parse_params
from providers.simulator.emay.common import Refused, check_auth, emay_apps, require
from providers.simulator.faults import add_route, stall_after_accept
from providers.simulator.state import ReportRef, SimState

MAX_MOBILES = 500
MAX_CUSTOM_ID = 64
NOTIFY_MAX_CONTENT = 200
TOTAL_MAX_CONTENT = 500
DEFAULT_REPORT_NUMBER = 200
MAX_REPORT_NUMBER = 1000
MOBILE_RE = re.compile(r"1[3-9]\d{9}")
VFCODE_RE = re.compile(r"\d{4}|\d{6}")
VOICE_SEND_ENDPOINTS = ("/voice/send", "/voice/sendVFCode", "/voice/sendCTCode")
# appendix 3.1: state -> message
VOICE_MESSAGES = {
    "SUCCESS": "成功", "FAIL_CALL": "呼叫失败", "FAIL_ERROR_VOICE": "错误工单", "FAIL_UNKNOWN": "未知失败",
    "TIMEOUT": "状态报告超时", "FAIL_NEEDMORE_BALANCE": "余额不足", "FAIL_MOBILE": "手机号错误",
    "FAIL_BLACKDICTIONARY": "内容有黑词", "FAIL_AUDITINGFAIL": "审核失败", "FAIL_APPID": "APPID 错误",
}
JOIN_DESC = {"4": "success", "3": "timeout", "2": "fail"}  # appendix 3.3; desc words from 2.4.2.2's example
Recipients = tuple[list[str], "list[str] | None"]  # mobiles, custom ids (None: none given)


# ---- pure functions ----------------------------------------------------------------------------------
def _split(value: str) -> list[str]:
    return value.split(",") if value else []


def _flag(params: Mapping[str, str], name: str, code: str) -> None:
    """An optional 0/1 flag."""
    require(params.get(name, "") in ("", "0", "1"), code)


def check_mobiles(mobiles: list[str], bad_mobiles: frozenset[str]) -> None:
    """1..500 mainland mobiles, none listed bad; one bad number refuses the whole request."""
    require(bool(mobiles), "ERROR_MOBILE_EMPTY")
    require(len(mobiles) <= MAX_MOBILES, "ERROR_MOBILE_NUMBER")
    require(all(MOBILE_RE.fullmatch(m) and m not in bad_mobiles for m in mobiles), "ERROR_MOBILE_ERROR")


def check_custom_ids(ids: list[str], n_mobiles: int, *, number_code: str, id_code: str) -> None:
    """Custom ids, when given, are one per mobile and each 1..64 characters."""
    if ids:
        require(len(ids) == n_mobiles, number_code)
        require(all(0 < len(cid) <= MAX_CUSTOM_ID for cid in ids), id_code)


def check_content(content: str, params: Mapping[str, str], *, max_chars: int | None) -> None:
    """Content present; content + interactive + message-prompt content at most 500 characters (字)."""
    require(bool(content), "ERROR_CONTENT_EMPTY")
    total = len(content) + len(params.get("interactiveContent", "")) + len(params.get("acousticSignContent", ""))
    require((max_chars is None or len(content) <= max_chars) and total <= TOTAL_MAX_CONTENT, "ERROR_LONG_CONTENT")


def validate_voice_send(endpoint: str, params: Mapping[str, str], bad_mobiles: frozenset[str]) -> Recipients:
    """Validate /voice/send, /voice/sendVFCode or /voice/sendCTCode: (mobiles, custom ids), or Refused."""
    require(not params.get("timingTime"), "ERROR_TIMING")
    if endpoint == "/voice/sendVFCode":
        mobiles, cid = _split(params.get("mobile", "")), params.get("customVoiceId", "")
        check_mobiles(mobiles, bad_mobiles)
        require(len(mobiles) == 1, "ERROR_MOBILE_ERROR")  # sendVFCode takes one `mobile`
        content = params.get("content", "")
        require(bool(content), "ERROR_CONTENT_EMPTY")
        require(bool(VFCODE_RE.fullmatch(content)), "ERROR_VERIFICATION_CODE_CONTENT")
        require(len(cid) <= MAX_CUSTOM_ID, "ERROR_CUSTOM_VOICE_ID")
        return mobiles, [cid] if cid else None
    mobiles, ids = _split(params.get("mobiles", "")), _split(params.get("customVoiceIds", ""))
    check_mobiles(mobiles, bad_mobiles)
    check_content(params.get("content", ""), params, max_chars=NOTIFY_MAX_CONTENT)
    check_custom_ids(ids, len(mobiles), number_code="ERROR_CUSTOM_VOICE_ID_NUMBER", id_code="ERROR_CUSTOM_VOICE_ID")
    _flag(params, "isInteractive", "ERROR_PARAMS")
    return mobiles, ids or None


def validate_join_send(params: Mapping[str, str], bad_mobiles: frozenset[str]) -> tuple[Recipients, str]:
    """Validate /join/send: ((mobiles, custom ids), the key that triggers the SMS), or Refused."""
    require(not params.get("timingTime"), "ERROR_TIMING")
    mobiles, ids = _split(params.get("mobiles", "")), _split(params.get("customJoinIds", ""))
    check_mobiles(mobiles, bad_mobiles)
    check_content(params.get("voiceContent", ""), params, max_chars=None)
    check_custom_ids(ids, len(mobiles), number_code="ERROR_CUSTOM_JOIN_ID_NUMBER", id_code="ERROR_CUSTOM_JOIN_ID")
    _flag(params, "isInteractive", "ERROR_ISINTERACTIVE")
    _flag(params, "isAcousticSign", "ERROR_ISACOUSTICSIGN")
    trigger, key = params.get("triggerConditions", ""), params.get("keyContent", "")
    require(trigger in ("3", "4"), "ERROR_TRIGGERCONDITIONS")
    if trigger == "3":
        require(bool(re.fullmatch(r"[0-9]", key)), "ERROR_KEYCONTENT")
        return (mobiles, ids or None), key
    connect = params.get("connectTime", "")
    require(bool(re.fullmatch(r"\d{1,2}", connect)) and 6 <= int(connect or 0) <= 60, "ERROR_CONNECTTIME")
    return (mobiles, ids or None), ""


def parse_number(params: Mapping[str, str]) -> int:
    """getReport's `number`: default 200, else an integer 1..1000, or Refused(ERROR_PARAMS)."""
    raw = params.get("number", "")
    if raw == "":
        return DEFAULT_REPORT_NUMBER
    require(bool(re.fullmatch(r"\d{1,4}", raw)) and 1 <= int(raw or 0) <= MAX_REPORT_NUMBER, "ERROR_PARAMS")
    return int(raw)


def _bucket(mobile: str, seed: int) -> tuple[int, int]:
    digest = hashlib.sha256(f"{seed}:{mobile}".encode()).digest()
    return digest[0] * 256 + digest[1], digest[2]


def voice_outcome(mobile: str, seed: int = 0) -> str:
    """Deterministic voice state: ~80% SUCCESS, 10% FAIL_CALL, 5% FAIL_UNKNOWN, 5% TIMEOUT."""
    pct = _bucket(mobile, seed)[0] % 100
    return "SUCCESS" if pct < 80 else "FAIL_CALL" if pct < 90 else "FAIL_UNKNOWN" if pct < 95 else "TIMEOUT"


def join_outcome(mobile: str, seed: int = 0) -> str:
    """Deterministic voice-SMS state: ~80% "4" (success), 15% "2" (failure), 5% "3" (timeout)."""
    pct = _bucket(mobile, seed)[0] % 100
    return "4" if pct < 80 else "2" if pct < 95 else "3"


@lru_cache(maxsize=4096)
def _beijing_time(unix_s: int) -> str:
    return datetime.fromtimestamp(unix_s, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def report_json(ref: ReportRef, seed: int = 0) -> dict:
    """The report object as getReport and pushes carry it; states padded like the document's examples."""
    record, i = ref
    mobile, state, pid, cid = record.mobiles[i], record.states[i], record.provider_id(i), record.custom_id(i)
    if record.service == "join":
        return {
            "appId": record.app_id, "joinId": pid, "customJoinId": cid, "state": f" {state} ",
            "desc": JOIN_DESC[state], "mobile": mobile,
            "keyContent": record.key_content if state == "4" else "", "voiceSign": "",
        }
    extra = _bucket(mobile, seed)[1]
    duration = round(5 + extra * 0.37, 2) if state == "SUCCESS" else 0.0
    calling = _beijing_time(int(record.at) + 1 + extra % 5)
    return {
        "appId": record.app_id, "voiceId": pid, "customVoiceId": cid, "state": f" {state} ",
        "message": VOICE_MESSAGES[state], "callingTime": calling, "callingDuration": duration, "mobile": mobile,
    }


# ---- routes --------------------------------------------------------------------------------------------
def voice_router(state: SimState) -> APIRouter:
    """The /voice/* and /join/* endpoints, answering from and recording into `state`."""
    router = APIRouter()
    apps, config = emay_apps(state.config), state.config

    def refused(code: str, key: str = "code") -> JSONResponse:
        state.refuse(code)
        return JSONResponse({key: code})

    def auth(params: dict[str, str], service: str, *, balance_call: bool = False) -> str:
        """The authenticated appId, or Refused; an app of the other service is refused too."""
        now = datetime.now(BEIJING)
        app = check_auth(params, apps, balance_call=balance_call, now=now, window_s=config.timestamp_window_s)
        require(app.service == service, "ERROR_MESSAGE_TYPE" if service == "voice" else "ERROR_APPID")
        return params["appId"]

    async def send(params: dict[str, str], endpoint: str, service: str) -> Response:
        app_id = auth(params, service)
        faults = state.faults
        require(not state.draw_fault("over_speed", faults.over_speed_rate) and state.admit(app_id, time.monotonic()),
                "ERROR_OVER_SPEED")
        if service == "voice":
            (mobiles, ids), key = validate_voice_send(endpoint, params, state.bad_mobiles), ""
            outcome = partial(voice_outcome, seed=config.seed)
            id_key, custom_key = "voiceId", "customVoiceId"
        else:
            (mobiles, ids), key = validate_join_send(params, state.bad_mobiles)
            outcome = partial(join_outcome, seed=config.seed)
            id_key, custom_key = "joinId", "customJoinId"
        record = state.accept(endpoint, app_id, service, mobiles, ids, outcome, key_content=key)
        # the document's own spellings: ERROR_NEEDMORE_BALANCE (3.2), ERROR_NEEDMORE_BLANCE (3.4)
        require(record is not None, "ERROR_NEEDMORE_BALANCE" if service == "voice" else "ERROR_NEEDMORE_BLANCE")
        assert record is not None
        answer = await json_off_the_loop(lambda: {"code": "SUCCESS", "data": [
            {"mobile": m, id_key: record.provider_id(i), custom_key: record.custom_id(i)}
            for i, m in enumerate(mobiles)]})
        await stall_after_accept(state)
        return answer

    async def get_report(params: dict[str, str], service: str) -> Response:
        app_id = auth(params, service)
        reports = state.take_reports(app_id, parse_number(params))
        return await json_off_the_loop(lambda: {"code": "SUCCESS",
                                                "data": [report_json(r, config.seed) for r in reports]})

    async def get_balance(params: dict[str, str], service: str) -> Response:
        value = str(state.balance(auth(params, service, balance_call=True)))
        if service == "voice":
            return JSONResponse({"balance": value, "responseCode": "SUCCESS"})
        return JSONResponse({"data": value, "code": "SUCCESS"})

    def bind(path: str, handler: Callable[..., Awaitable[Response]], *args: str) -> None:
        # voice balance errors are {"responseCode": …}; every other error is {"code": …}
        error_key = "responseCode" if path == "/voice/getBalance" else "code"

        async def respond(request: Request) -> Response:
            params = parse_params(request.query_params, await request.body(), request.headers.get("content-type", ""))
            try:
                return await handler(params or {}, *args)  # undecodable body: no parameters, so ERROR_PARAMS
            except Refused as exc:
                return refused(exc.code, error_key)

        add_route(router, state, path, respond)

    for path in VOICE_SEND_ENDPOINTS:
        bind(path, send, path, "voice")
    bind("/join/send", send, "/join/send", "join")
    bind("/voice/getReport", get_report, "voice")
    bind("/join/getReport", get_report, "join")
    bind("/voice/getBalance", get_balance, "voice")
    bind("/join/getBalance", get_balance, "join")
    return router
