"""Emay international SMS (/inter/*) as document 004 describes it: JSON bodies, signed, 300 per request.

Pure functions validate a body and return the document's code (as Refused); the router applies faults,
records what it accepts in the shared state and answers the documented JSON.  Authentication (appId,
Beijing timestamp within the window, sign = md5(appId + secretKey + timestamp)) is every Emay product's
``common.check_auth``.  The document has no over-speed code, no balance query and no balance error: a
request the balance cannot pay for is accepted and its reports say FAIL_BALANCE (table 4).
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from providers.simulator.base import BEIJING, json_off_the_loop
from providers.simulator.emay.common import Refused, check_auth, emay_apps, require
from providers.simulator.faults import add_route, stall_after_accept
from providers.simulator.state import ReportRef, SimState

MAX_MOBILES = 300
MAX_CUSTOM_ID = 32
MAX_CONTENT = 1000  # the document names ERROR_LONG_CONTENT without a figure; msgrelay's client uses 1000 too
DEFAULT_REPORT_NUMBER = MAX_REPORT_NUMBER = 500
MOBILE_RE = re.compile(r"00[1-9][0-9]{5,14}")  # 00 + country code + number: at most 15 digits after 00
MAINLAND_PREFIX = "0086"  # international SMS does not deliver to mainland China
SINGLE, BATCH, PERSONAL = "/inter/sendSingleIMS", "/inter/sendBatchIMS", "/inter/sendPersonalityIMS"
STATE_DESC = {  # table 4
    "DELIVRD": "成功", "TIMEOUT": "运营商状态报告超时", "FAIL_BALANCE": "余额不足", "FAIL_MOBILE": "手机号错误",
    "FAIL_MOBILE_SUPPORT": "手机号不支持", "FAIL_MOBILE_REPEAT": "手机号重复", "FAIL_BLACK_DICT": "黑字典失败",
    "FAIL_RESPONSE": "运营商响应失败", "FAIL_UNKNOW": "未知失败",
}
Recipients = tuple[list[str], "list[str] | None"]


# ---- pure functions ----------------------------------------------------------------------------------
def parse_body(body: bytes) -> dict[str, Any]:
    """The UTF-8 JSON object of a request, or Refused(ERROR_PARAMS)."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refused("ERROR_PARAMS") from None
    require(isinstance(payload, dict), "ERROR_PARAMS")
    return payload


def auth_params(body: Mapping[str, Any]) -> dict[str, str]:
    """appId, timestamp and sign when they are strings (anything else counts as missing)."""
    return {k: body[k] for k in ("appId", "timestamp", "sign") if isinstance(body.get(k), str)}


def check_mobile(mobile: Any, bad_mobiles: frozenset[str]) -> str:
    """One `00` + country code number, not mainland China, not listed bad."""
    require(isinstance(mobile, str) and mobile != "", "ERROR_MOBILE_EMPTY")
    require(bool(MOBILE_RE.fullmatch(mobile)) and not mobile.startswith(MAINLAND_PREFIX)
            and mobile not in bad_mobiles, "ERROR_MOBILE_ERROR")
    return mobile


def check_content(content: Any) -> None:
    """Content present and within the length we hold the provider to."""
    require(isinstance(content, str) and content.strip() != "", "ERROR_CONTENT_EMPTY")
    require(len(content) <= MAX_CONTENT, "ERROR_LONG_CONTENT")


def check_custom_id(custom_id: Any) -> str | None:
    """An optional customImsId of at most 32 characters."""
    if custom_id is None or custom_id == "":
        return None
    require(isinstance(custom_id, str), "ERROR_PARAMS")
    require(len(custom_id) <= MAX_CUSTOM_ID, "ERROR_CUSTOM_IMSID")
    return custom_id


def validate_send(endpoint: str, body: Mapping[str, Any], bad_mobiles: frozenset[str]) -> Recipients:
    """Validate one send body: (mobiles, custom ids or None when not every recipient has one), or Refused."""
    if endpoint == SINGLE:
        mobile = check_mobile(body.get("mobile"), bad_mobiles)
        check_content(body.get("content"))
        cid = check_custom_id(body.get("customImsId"))
        return [mobile], [cid] if cid else None
    imses = body.get("imses")
    require(imses is None or isinstance(imses, list), "ERROR_PARAMS")
    require(bool(imses), "ERROR_MOBILE_EMPTY")
    require(len(imses) <= MAX_MOBILES, "ERROR_MOBILE_NUMBER")
    require(all(isinstance(item, dict) for item in imses), "ERROR_PARAMS")
    if endpoint == BATCH:
        check_content(body.get("content"))
    mobiles, ids = [], []
    for item in imses:
        mobiles.append(check_mobile(item.get("mobile"), bad_mobiles))
        ids.append(check_custom_id(item.get("customImsId")))
        if endpoint == PERSONAL:
            check_content(item.get("content"))
    return mobiles, ids if all(ids) else None


def parse_number(body: Mapping[str, Any]) -> int:
    """getIMSReport's `number`: default 500, else an integer 1..500 (a digit string is taken too)."""
    raw = body.get("number")
    if raw is None or raw == "":
        return DEFAULT_REPORT_NUMBER
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        raw = int(raw)
    require(isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= MAX_REPORT_NUMBER, "ERROR_PARAMS")
    return raw


def ims_outcome(mobile: str, seed: int = 0) -> str:
    """Deterministic state: ~85% DELIVRD, 5% TIMEOUT, 4% FAIL_RESPONSE, 3% FAIL_UNKNOW, 3% FAIL_BLACK_DICT."""
    pct = int.from_bytes(hashlib.sha256(f"ims:{seed}:{mobile}".encode()).digest()[:2], "big") % 100
    if pct < 85:
        return "DELIVRD"
    return "TIMEOUT" if pct < 90 else "FAIL_RESPONSE" if pct < 94 else "FAIL_UNKNOW" if pct < 97 else "FAIL_BLACK_DICT"


def outcomes_for(seed: int, *, paid: bool) -> Callable[[str], str]:
    """The per-mobile outcome of one request: a repeated mobile fails as FAIL_MOBILE_REPEAT, an unpaid
    request as FAIL_BALANCE."""
    seen: set[str] = set()

    def outcome(mobile: str) -> str:
        if not paid:
            return "FAIL_BALANCE"
        if mobile in seen:
            return "FAIL_MOBILE_REPEAT"
        seen.add(mobile)
        return ims_outcome(mobile, seed)

    return outcome


def beijing(unix_s: float) -> str:
    """Unix seconds as the document's `yyyy-MM-dd HH:mm:ss` Beijing time."""
    return datetime.fromtimestamp(unix_s, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def report_json(ref: ReportRef) -> dict[str, Any]:
    """One report object as 2.4.2.2 shows it."""
    record, i = ref
    state = record.states[i]
    return {"mobile": record.mobiles[i], "imsId": record.provider_id(i), "customImsId": record.custom_id(i),
            "state": state, "desc": STATE_DESC.get(state, ""), "submitTime": beijing(record.at),
            "receiveTime": beijing(record.at + 2)}


# ---- routes --------------------------------------------------------------------------------------------
def ims_router(state: SimState) -> APIRouter:
    """The /inter/* endpoints, answering from and recording into `state`."""
    router = APIRouter()
    config, apps = state.config, emay_apps(state.config)

    def authenticate(body: Mapping[str, Any]) -> str:
        app = check_auth(auth_params(body), apps, balance_call=False, now=datetime.now(BEIJING),
                         window_s=config.timestamp_window_s)
        require(app.service == "ims", "ERROR_APPID")  # a voice appId is not an international one
        return body["appId"]

    async def send(body: dict[str, Any], endpoint: str) -> Response:
        app_id = authenticate(body)
        mobiles, ids = validate_send(endpoint, body, state.bad_mobiles)
        # no await between the balance check and accept: the event loop makes the pair atomic
        paid = state.balance(app_id) >= len(mobiles)
        if not paid:  # recorded but not charged: its reports say FAIL_BALANCE
            state.set_balance(app_id, state.balance(app_id) + len(mobiles))
        record = state.accept(endpoint, app_id, "ims", mobiles, ids, outcomes_for(config.seed, paid=paid))
        assert record is not None
        def answer_body() -> dict[str, Any]:
            data = [{"mobile": m, "imsId": record.provider_id(i), "customImsId": record.custom_id(i)}
                    for i, m in enumerate(mobiles)]
            return {"code": "SUCCESS", "data": data[0] if endpoint == SINGLE else data}

        answer = await json_off_the_loop(answer_body)
        await stall_after_accept(state)
        return answer

    async def get_report(body: dict[str, Any]) -> Response:
        app_id = authenticate(body)
        reports = state.take_reports(app_id, parse_number(body))
        return await json_off_the_loop(lambda: {"code": "SUCCESS", "data": [report_json(r) for r in reports]})

    def bind(path: str, handler: Callable[..., Awaitable[Response]], *args: str) -> None:
        async def respond(request: Request) -> Response:
            try:
                return await handler(parse_body(await request.body()), *args)
            except Refused as exc:
                state.refuse(exc.code)
                return JSONResponse({"code": exc.code})

        add_route(router, state, path, respond)

    for path in (SINGLE, BATCH, PERSONAL):
        bind(path, send, path)
    bind("/inter/getIMSReport", get_report)
    return router
