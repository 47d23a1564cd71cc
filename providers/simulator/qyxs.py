"""企业信使 SMS (document 003, as DESIGN §5 reads it): form POSTs answered with the documented XML.

/sms.aspx action=send | overage | checkkeyword, /statusApi.aspx and /callApi.aspx action=query.  Every
action checks userid + account + password.  Sends are recorded in the shared state without custom ids
(the platform has none), so duplicates are counted by mobile per userid.  Replies (上行) are made here:
a deterministic ~5% of delivered recipients answer once their report is ready, handed out once each, after
them the replies injected by /_sim/reply (``reply``).
The document names no over-speed answer, so only latency, 5xx and the faults after acceptance are injected.
"""
from __future__ import annotations

import hashlib
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import Response

from providers.simulator.base import BEIJING, DEFAULT_BALANCE, SimVendor, account_field, account_secret, parse_params
from providers.simulator.config import SimConfig
from providers.simulator.faults import add_route, stall_after_accept
from providers.simulator.state import RequestRecord, SimState

NAME = "qyxs"
MAX_MOBILES = 1000  # DESIGN §3's reading; the document gives no figure
PAGE = 500  # reports or replies per query
MOBILE_DIGITS = 11
KEYWORDS = ("代开发票", "六合彩", "赌博")  # the simulator's own forbidden words
REPLIES = ("收到，谢谢", "好的", "TD", "请问活动截止到什么时候？", "退订")
REPLY_PERCENT = 5
FAIL_CODES = ("UNDELIV", "MK:0001", "DB:0141")
# the document's texts (chapter 1–4 tables)
EMPTY_LOGIN, BAD_LOGIN = "用户名或密码不能为空", "用户名或密码错误"
NO_MOBILE, NO_CONTENT = "短信号码不能为空", "短信内容不能为空"
ILLEGAL, CLEAN = "包含非法字符", "未包含非法字符"
POOR = "对不起，您当前要发送的量大于您当前余额"
QUERY_ERRORS = {"1": EMPTY_LOGIN, "2": BAD_LOGIN, "3": "该用户不允许查看状态报告", "4": "参数不正确"}


@dataclass
class QyxsUser:
    """One simulated 企业信使 user: userid (its credential id), account name, password, balance."""

    account: str
    password: str = field(repr=False)
    balance: Decimal = DEFAULT_BALANCE

    def __post_init__(self) -> None:
        self.balance = Decimal(str(self.balance))


def qyxs_users(config: SimConfig) -> dict[str, QyxsUser]:
    """The configured 企业信使 users by userid."""
    return config.credentials_of(NAME)


def add_account(users: dict[str, QyxsUser], provider: str, account: Any) -> None:
    """Add one qyxs_sms account's user to `users`."""
    users[str(account_field(account, "userid"))] = QyxsUser(account=str(account_field(account, "account")),
                                                          password=account_secret(account, "password"))


class Failed(Exception):
    """An answer with returnstatus Faild (or, on the query paths, an <errorstatus> code)."""


# ---- pure functions ----------------------------------------------------------------------------------
def xml(body: str) -> str:
    """The document's envelope around `body`."""
    return f'<?xml version="1.0" encoding="utf-8" ?><returnsms>{body}</returnsms>'


def elements(**values: object) -> str:
    """<name>text</name> for each value, text escaped."""
    return "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in values.items())


def authenticate(params: Mapping[str, str], users: Mapping[str, QyxsUser]) -> str:
    """The userid when userid, account and password match, else Failed with the document's text."""
    userid, account, password = (params.get(k, "") for k in ("userid", "account", "password"))
    if not (userid and account and password):
        raise Failed(EMPTY_LOGIN)
    user = users.get(userid)
    if user is None or user.account != account or user.password != password:
        raise Failed(BAD_LOGIN)
    return userid


def keyword_hit(content: str) -> str | None:
    """The first forbidden word in `content`."""
    return next((word for word in KEYWORDS if word in content), None)


def valid_mobile(mobile: str, bad_mobiles: frozenset[str]) -> bool:
    """A mainland mobile (11 digits starting 13–19) not listed bad."""
    return (len(mobile) == MOBILE_DIGITS and mobile.isascii() and mobile.isdigit() and mobile[0] == "1"
            and mobile[1] in "3456789" and mobile not in bad_mobiles)


def check_send(params: Mapping[str, str], bad_mobiles: frozenset[str]) -> list[str]:
    """The mobiles a send accepts (malformed ones are dropped, as successCounts shows), or Failed."""
    mobiles = [m.strip() for m in params.get("mobile", "").split(",") if m.strip()]
    if not mobiles:
        raise Failed(NO_MOBILE)
    if len(mobiles) > MAX_MOBILES:
        raise Failed(f"其他错误：一次最多提交{MAX_MOBILES}个号码")
    content = params.get("content", "")
    if not content.strip():
        raise Failed(NO_CONTENT)
    send_time = params.get("sendTime", "").strip()
    if send_time:
        try:
            datetime.strptime(send_time, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise Failed("其他错误：定时发送时间格式错误") from None
    if params.get("checkcontent") == "1" and (word := keyword_hit(content)):
        raise Failed(f"{ILLEGAL}：{word}")
    valid = [m for m in mobiles if valid_mobile(m, bad_mobiles)]
    if not valid:
        raise Failed(NO_MOBILE)
    return valid


def _pct(salt: str, mobile: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{seed}:{mobile}".encode()).digest()[:2], "big") % 100


def qyxs_outcome(mobile: str, seed: int = 0) -> str:
    """Deterministic report status: ~90% "10" (delivered), 10% "20" (failed)."""
    return "10" if _pct("qyxs", mobile, seed) < 90 else "20"


def task_id(record: RequestRecord) -> str:
    """The taskID of a recorded send: its first recipient's 20-digit provider id (unique across restarts)."""
    return record.provider_id(0)


def beijing(unix_s: float) -> str:
    """Unix seconds as `YYYY-MM-DD HH:MM:SS` Beijing time."""
    return datetime.fromtimestamp(unix_s, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def statusbox(record: RequestRecord, i: int, seed: int) -> str:
    """One report record (chapter 4)."""
    mobile, state = record.mobiles[i], record.states[i]
    code = "DELIVRD" if state == "10" else FAIL_CODES[_pct("code", mobile, seed) % len(FAIL_CODES)]
    inner = elements(mobile=mobile, taskid=task_id(record), status=state, receivetime=beijing(record.at + 1),
                     errorcode=code)
    return f"<statusbox>{inner}</statusbox>"


def callbox(mobile: str, taskid: str, content: str, received_at: float) -> dict[str, str]:
    """One reply record (chapter 5's <callbox>), its fields in the document's order."""
    return {"mobile": mobile, "taskid": taskid, "content": content, "receivetime": beijing(received_at)}


def replies_of(record: RequestRecord, seed: int) -> list[dict[str, str]]:
    """The replies a delivered send draws: ~5% of its delivered recipients, deterministic by mobile."""
    return [callbox(m, task_id(record), REPLIES[_pct("text", m, seed) % len(REPLIES)], record.at + 3)
            for m, state in zip(record.mobiles, record.states)
            if state == "10" and _pct("reply", m, seed) < REPLY_PERCENT]


def reply(record: RequestRecord | None, mobile: str, content: str, received_at: float) -> dict[str, str]:
    """A reply injected by /_sim/reply: under the taskid of the send it answers, an empty one when none is known."""
    return callbox(mobile, task_id(record) if record is not None else "", content, received_at)


class Inbox:
    """Replies not yet handed out, per userid; built from the shared records as their reports come due."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.generation = -1
        self.cursor = 0
        self.waiting: dict[str, deque[dict[str, str]]] = defaultdict(deque)

    def take(self, userid: str, n: int) -> list[dict[str, str]]:
        """Up to n replies for `userid`, drawn and injected ones, each handed out once (a reset forgets them)."""
        records = self.state.records
        if self.generation != self.state.generation:
            self.generation, self.cursor, self.waiting = self.state.generation, 0, defaultdict(deque)
        now = time.monotonic()
        while self.cursor < len(records) and records[self.cursor].ready_at <= now:
            record = records[self.cursor]
            if record.endpoint == "/sms.aspx":
                self.waiting[record.app_id].extend(replies_of(record, self.state.config.seed))
            self.cursor += 1
        queue = self.waiting[userid]
        queue.extend(self.state.take_replies(userid, PAGE))
        return [queue.popleft() for _ in range(min(n, len(queue)))]


# ---- routes --------------------------------------------------------------------------------------------
def qyxs_router(state: SimState) -> APIRouter:
    """The 企业信使 endpoints, answering from and recording into `state`."""
    router = APIRouter()
    config, users, inbox = state.config, qyxs_users(state.config), Inbox(state)

    async def send(params: dict[str, str], userid: str) -> str:
        mobiles = check_send(params, state.bad_mobiles)
        seed = config.seed
        record = state.accept("/sms.aspx", userid, "qyxs", mobiles, None, lambda m: qyxs_outcome(m, seed))
        if record is None:
            raise Failed(POOR)
        answer = xml(elements(returnstatus="Success", message="ok", remainpoint=state.balance(userid),
                              taskID=task_id(record), successCounts=len(mobiles)))
        await stall_after_accept(state)
        return answer

    async def overage(params: dict[str, str], userid: str) -> str:
        total = users[userid].balance
        return xml(elements(returnstatus="Sucess", message="", payinfo="预付费", overage=state.balance(userid),
                            sendTotal=total))

    async def checkkeyword(params: dict[str, str], userid: str) -> str:
        content = params.get("content", "")
        if not content.strip():
            raise Failed(NO_CONTENT)
        word = keyword_hit(content)
        return xml(elements(message=f"{ILLEGAL}：{word}" if word else CLEAN))

    sms_actions: dict[str, Callable[[dict[str, str], str], Awaitable[str]]] = {
        "send": send, "overage": overage, "checkkeyword": checkkeyword}

    async def sms(params: dict[str, str]) -> str:
        try:
            userid = authenticate(params, users)
            action = sms_actions.get(params.get("action", "").strip().lower())
            if action is None:
                raise Failed("其他错误：action 不正确")
            return await action(params, userid)
        except Failed as exc:
            state.refuse(str(exc))
            return xml(elements(returnstatus="Faild", message=exc, remainpoint="", taskID="", successCounts=0))

    def query(render: Callable[[str], str]) -> Callable[[dict[str, str]], Awaitable[str]]:
        async def handler(params: dict[str, str]) -> str:
            try:
                userid = authenticate(params, users)
                code = None if params.get("action", "").strip().lower() == "query" else "4"
            except Failed as exc:
                code = "1" if str(exc) == EMPTY_LOGIN else "2"
            if code is not None:
                state.refuse(QUERY_ERRORS[code])
                return xml(f"<errorstatus>{elements(error=code, remark=QUERY_ERRORS[code])}</errorstatus>")
            return xml(render(userid))
        return handler

    def reports(userid: str) -> str:
        return "".join(statusbox(r.record, r.index, config.seed) for r in state.take_reports(userid, PAGE))

    def replies(userid: str) -> str:
        return "".join(f"<callbox>{elements(**reply)}</callbox>" for reply in inbox.take(userid, PAGE))

    def bind(path: str, handler: Callable[[dict[str, str]], Awaitable[str]]) -> None:
        async def respond(request: Request) -> Response:
            params = parse_params(request.query_params, await request.body(),
                                  request.headers.get("content-type", "")) or {}
            return Response(await handler(params), media_type="text/xml; charset=utf-8")

        add_route(router, state, path, respond)

    bind("/sms.aspx", sms)
    bind("/statusApi.aspx", query(reports))
    bind("/callApi.aspx", query(replies))
    return router


VENDOR = SimVendor(name=NAME, providers=("qyxs_sms",), add_account=add_account, secret_attr="password",
                   router=qyxs_router, reply=reply)
