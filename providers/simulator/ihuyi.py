"""ihuyi MMS (document 002) as the simulator serves it: batchSend, balance, templateCreate and three pushes.

An independent reading of the document: nothing here is shared with ``providers/ihuyi_mms.py``. The
document names no error code but "OK"; ours are the keys of CODES. A write (batchSend, templateCreate)
whose request_id this api_id used in the last 2 hours is not carried out again: it gets the first answer.
ihuyi-only state lives here and is forgotten whenever the shared state is reset.

Control routes (JSON):
  POST   /_sim/ihuyi/push {"api_id", "receipt_url"?, "mo_url"?, "template_url"?, "mo_rate"?, "repeat"?, "retry_s"?}
         push receipts, replies (a share `mo_rate` of delivered phones answer) and audits; `repeat` delivers
         every push that many times (a repeat after a lost `success`); DELETE /_sim/ihuyi/push?api_id=
  POST   /_sim/ihuyi/audit {"api_id", "template_id", "code", "message"?}   audit a template now
  POST   /_sim/ihuyi/product {"api_id", "product_id", "product_name"};  POST /_sim/ihuyi/limits {"max_kb"}
  GET    /_sim/ihuyi/requests (every batchSend: request_id, timestamp, signature, task_id, phones, duplicate)
  GET    /_sim/ihuyi/templates;  GET /_sim/ihuyi/stats
Templates are approved `report_delay_s` after creation, unless the title contains "REJECT".
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import itertools
import json
import logging
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from providers.simulator.state import ReportRef, SimState

log = logging.getLogger("msgrelay.simulator.ihuyi")
BEIJING = timezone(timedelta(hours=8))
SEND, BALANCE, TEMPLATE = "/mms/v1/batchSend", "/mms/v1/balance", "/mms/v1/templateCreate"
MAX_PHONES, DEDUP_S, PUSH_BATCH, PUSH_ATTEMPTS, IDLE_S = 10_000, 7200.0, 1000, 3, 0.05
MOBILE = re.compile(r"1[3-9][0-9]{9}")
SIGN_NAME = re.compile(r"【[^【】]+】")
EXTS = {"image": ("jpg", "jpeg", "png", "gif"), "audio": ("mp3",), "video": ("mp4",)}
MAGIC = {"jpg": (0, b"\xff\xd8\xff"), "jpeg": (0, b"\xff\xd8\xff"), "png": (0, b"\x89PNG\r\n\x1a\n"),
         "gif": (0, b"GIF8"), "mp4": (4, b"ftyp")}
CODES = {"OK": "提交成功", "ERROR_PARAMS": "参数错误", "ERROR_API_ID": "api_id不存在", "ERROR_TIMESTAMP": "时间戳错误",
         "ERROR_SIGNATURE": "签名错误", "ERROR_OVER_SPEED": "请求过快", "ERROR_PRODUCT_ID": "产品不存在",
         "ERROR_PHONE_NUMBER": "号码数量错误", "ERROR_PHONE": "手机号码错误", "ERROR_CONTENT": "彩信内容错误",
         "ERROR_TITLE": "标题错误", "ERROR_SIGN_NAME": "彩信签名错误", "ERROR_TEMPLATE": "模板不存在或未审核通过",
         "ERROR_SEND_TIME": "定时时间格式错误", "ERROR_BALANCE": "余额不足"}
RECEIPT_WORDS = {"DELIVERED": "用户接收成功", "UNDELIV": "用户接收失败", "EXPIRED": "超时未接收", "REJECTD": "运营商拒绝"}


class Refused(Exception):
    """A request answered with one of CODES."""


def require(ok: Any, code: str) -> None:
    """Refuse with `code` unless `ok`."""
    if not ok:
        raise Refused(code)


def signature(api_id: str, api_key: str, request_id: str, timestamp: Any) -> str:
    """2: md5("api_id=…&api_key=…&request_id=…&timestamp=…"), 32 lowercase hex digits."""
    return hashlib.md5(f"api_id={api_id}&api_key={api_key}&request_id={request_id}&timestamp={timestamp}"
                       .encode("utf-8")).hexdigest()


def check_frames(content: Any, max_bytes: int) -> None:
    """9.1: frames of ≤1 text and ≤1 image/audio/video, known extensions, base64 media matching it, size."""
    require(isinstance(content, list) and content, "ERROR_CONTENT")
    total = 0
    for frame in content:
        require(isinstance(frame, list) and frame and all(isinstance(i, dict) for i in frame), "ERROR_CONTENT")
        kinds: Counter[str] = Counter()
        for item in frame:
            con, ext, data = item.get("con_type"), item.get("ext_type"), item.get("data")
            require(isinstance(data, str) and data, "ERROR_CONTENT")
            if con == "text":
                require(ext == "txt", "ERROR_CONTENT")
                kinds["text"] += 1
                total += len(data.encode("utf-8"))
                continue
            require(ext in EXTS.get(con, ()), "ERROR_CONTENT")
            kinds["media"] += 1
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise Refused("ERROR_CONTENT") from None
            if ext == "mp3":
                require(raw[:3] == b"ID3" or raw[:1] == b"\xff", "ERROR_CONTENT")
            else:
                at, magic = MAGIC[ext]
                require(raw[at:at + len(magic)] == magic, "ERROR_CONTENT")
            total += len(raw)
        require(kinds["text"] <= 1 and kinds["media"] <= 1, "ERROR_CONTENT")
    require(total <= max_bytes, "ERROR_CONTENT")


def outcome(phone: str, seed: int = 0) -> str:
    """Deterministic receipt code: ~90% DELIVERED, 6% UNDELIV, 2% EXPIRED, 2% REJECTD."""
    pct = int.from_bytes(hashlib.sha256(f"{seed}:{phone}".encode()).digest()[:2], "big") % 100
    return "DELIVERED" if pct < 90 else "UNDELIV" if pct < 96 else "EXPIRED" if pct < 98 else "REJECTD"


def replies(phone: str, rate: float) -> bool:
    """Whether this phone answers an MMS (deterministic, a share `rate` of phones)."""
    return int.from_bytes(hashlib.sha256(f"mo:{phone}".encode()).digest()[:2], "big") < rate * 65536


def beijing(unix_s: float) -> str:
    """Beijing "YYYY-MM-DD HH:MM:SS", the document's time format."""
    return datetime.fromtimestamp(unix_s, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def receipt_json(ref: ReportRef) -> dict:
    """6.2's receipt for one recipient; the request's task_id is its first provider id."""
    record, i = ref
    code = record.states[i]
    return {"task_id": record.provider_id(0), "phone": record.mobiles[i], "code": code,
            "message": RECEIPT_WORDS.get(code, code), "send_time": beijing(record.at),
            "report_time": beijing(time.time())}


@dataclass
class SimTemplate:
    """A template and its audit: in force from `due` (time.monotonic()), pushed once."""

    api_id: str
    title: str
    code: str
    message: str
    due: float
    pushed: bool = False

    def status(self) -> str:
        """pending until the audit is due, then approved or rejected."""
        return "pending" if time.monotonic() < self.due else "approved" if self.code == "SUCCESS" else "rejected"


class PushIn(BaseModel):
    """Where one api_id's pushes go, and how."""

    api_id: str
    receipt_url: str | None = None
    mo_url: str | None = None
    template_url: str | None = None
    mo_rate: float = Field(0.02, ge=0, le=1)
    repeat: int = Field(1, ge=1, le=5)
    retry_s: float = Field(0.2, ge=0, le=60)  # ihuyi waits 60 s, then 120 s more ("每次间隔叠加60秒")


class AuditIn(BaseModel):
    """An operator's audit verdict for one template."""

    api_id: str
    template_id: int
    code: str = Field(pattern="^(SUCCESS|FAIL)$")
    message: str | None = None


class ProductIn(BaseModel):
    """One more product of an api_id (shown by the balance query)."""

    api_id: str
    product_id: int
    product_name: str


class IhuyiSim:
    """ihuyi-only state (dedup answers, templates, push configuration, counters) and the push thread."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.lock = threading.Lock()
        self.template_ids = itertools.count(100_000 + int(time.time()) % 100_000 * 10)  # unique across resets
        self.generation = -1
        self.thread: threading.Thread | None = None
        self.http = requests.Session()
        self.fresh()

    def fresh(self) -> None:
        """Forget everything when the shared state was reset since we last looked."""
        if self.generation == self.state.generation:
            return
        self.generation = self.state.generation
        self.answers: dict[tuple[str, str], tuple[dict, float]] = {}
        self.log: list[dict] = []
        self.templates: dict[int, SimTemplate] = {}
        self.push: dict[str, PushIn] = {}
        self.products: dict[str, dict[int, str]] = {}
        self.max_bytes = 300 * 1024
        self.stats: Counter[str] = Counter()

    def count(self, key: str) -> None:
        """Bump a push counter."""
        with self.lock:
            self.stats[key] += 1

    def products_of(self, api_id: str) -> dict[int, str]:
        """The api_id's products: configured ones and those added by a control route."""
        return {**self.state.config.ihuyi_apps[api_id].products, **self.products.get(api_id, {})}

    def ensure_pusher(self) -> None:
        """Start the push thread unless it runs (it stops by itself when no api_id has a push target)."""
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.run, name="sim-ihuyi-pusher", daemon=True)
                self.thread.start()

    def run(self) -> None:
        """Push ready receipts (and replies) and due audits until no api_id has a push target."""
        while True:
            with self.lock:
                self.fresh()
                if not self.push:
                    self.thread = None
                    return
                targets = dict(self.push)
            busy = False
            for api_id, cfg in targets.items():
                if cfg.receipt_url and (refs := self.state.take_reports(api_id, PUSH_BATCH, for_push=True)):
                    busy = True
                    self.deliver(cfg.receipt_url, [receipt_json(r) for r in refs], cfg, "receipt")
                    mo = [{"task_id": r.record.provider_id(0), "phone": r.record.mobiles[r.index], "content": "收到，谢谢",
                           "dest_code": "10690" + r.record.mobiles[r.index][-4:], "send_time": beijing(r.record.at),
                           "receive_time": beijing(time.time())}
                          for r in refs if r.record.states[r.index] == "DELIVERED"
                          and replies(r.record.mobiles[r.index], cfg.mo_rate)]
                    if mo and cfg.mo_url:
                        self.deliver(cfg.mo_url, mo, cfg, "mo")
                if cfg.template_url:
                    now = time.monotonic()
                    with self.lock:
                        due = [(tid, t) for tid, t in self.templates.items()
                               if t.api_id == api_id and not t.pushed and t.due <= now]
                    for tid, t in due:
                        busy = True
                        t.pushed = True
                        self.deliver(cfg.template_url, {"template_id": tid, "code": t.code, "message": t.message},
                                     cfg, "template")
            if not busy:
                time.sleep(IDLE_S)

    def deliver(self, url: str, body: Any, cfg: PushIn, kind: str) -> bool:
        """POST up to 3 times, waiting longer each time, until the answer is `success`; then `repeat` − 1 more."""
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=UTF-8"}
        for attempt in range(PUSH_ATTEMPTS):
            if attempt:
                time.sleep(cfg.retry_s * attempt)
            self.count(f"{kind}_attempts")
            try:
                if self.http.post(url, data=data, headers=headers, timeout=10).text.strip() == "success":
                    break
            except requests.RequestException as exc:
                log.info("ihuyi %s push failed: %s", kind, type(exc).__name__)
        else:
            self.count(f"{kind}_failed")  # ihuyi gives up after 3 pushes
            return False
        self.count(f"{kind}_delivered")
        for _ in range(cfg.repeat - 1):
            self.count(f"{kind}_repeated")
            try:
                self.http.post(url, data=data, headers=headers, timeout=10)
            except requests.RequestException:
                pass  # the first delivery counted; a repeat is extra
        return True


def ihuyi_router(state: SimState) -> APIRouter:
    """The ihuyi endpoints and control routes, answering from `state` and this module's own state."""
    router = APIRouter()
    ih, config = IhuyiSim(state), state.config

    def auth(body: Any) -> tuple[str, str]:
        """2: the public parameters, or Refused; api_key is signed, never sent."""
        require(isinstance(body, dict) and "api_key" not in body, "ERROR_PARAMS")
        api_id, request_id, sig, ts = (body.get(k) for k in ("api_id", "request_id", "signature", "timestamp"))
        require(all(isinstance(v, str) and v for v in (api_id, request_id, sig))
                and isinstance(ts, (int, str)) and not isinstance(ts, bool), "ERROR_PARAMS")
        app = config.ihuyi_apps.get(api_id)
        require(app is not None, "ERROR_API_ID")
        require(re.fullmatch(r"[0-9]{10}", str(ts)) and abs(time.time() - int(ts)) <= config.timestamp_window_s,
                "ERROR_TIMESTAMP")
        require(sig == signature(api_id, app.api_key, request_id, ts), "ERROR_SIGNATURE")
        return api_id, request_id

    def remembered(key: tuple[str, str]) -> dict | None:
        """The first answer to this api_id's request_id within 2 hours (call with the lock held)."""
        hit = ih.answers.get(key)
        if hit is None or hit[1] < time.monotonic():
            return None
        ih.stats["duplicates_answered"] += 1
        return hit[0]

    def logged(body: dict, answer: dict, *, duplicate: bool) -> None:
        ih.log.append({key: body.get(key) for key in ("api_id", "request_id", "timestamp", "signature")}
                      | {"task_id": answer.get("task_id"), "phones": len(body.get("phone") or []),
                         "duplicate": duplicate, "at": time.time()})

    async def send(body: dict, api_id: str, request_id: str) -> Response:
        with ih.lock:
            if (answer := remembered((api_id, request_id))) is not None:
                logged(body, answer, duplicate=True)
                return JSONResponse(answer)
        faults = state.faults
        require(not state.draw(faults.over_speed_rate) and state.admit(api_id, time.monotonic()), "ERROR_OVER_SPEED")
        product = body.get("product_id")
        require(isinstance(product, int) and not isinstance(product, bool) and product in ih.products_of(api_id),
                "ERROR_PRODUCT_ID")
        phones = body.get("phone")
        require(isinstance(phones, list) and 0 < len(phones) <= MAX_PHONES, "ERROR_PHONE_NUMBER")
        require(all(isinstance(p, str) and MOBILE.fullmatch(p) and p not in state.bad_mobiles for p in phones),
                "ERROR_PHONE")
        if body.get("content"):  # 3.3: given both, the content is sent and the template ignored
            check_frames(body["content"], ih.max_bytes)
            require(isinstance(body.get("title"), str) and body["title"].strip(), "ERROR_TITLE")
            require(isinstance(body.get("sign_name"), str) and SIGN_NAME.fullmatch(body["sign_name"]),
                    "ERROR_SIGN_NAME")
        else:
            tid = body.get("template_id")
            template = ih.templates.get(tid) if isinstance(tid, int) else None
            require(template and template.api_id == api_id and template.status() == "approved", "ERROR_TEMPLATE")
            require("sign_name" not in body or SIGN_NAME.fullmatch(str(body["sign_name"])), "ERROR_SIGN_NAME")
        if body.get("send_time") is not None:
            try:
                datetime.strptime(str(body["send_time"]), "%Y-%m-%d %H:%M:%S")
            except ValueError:
                raise Refused("ERROR_SEND_TIME") from None
        with ih.lock:
            if (answer := remembered((api_id, request_id))) is None:  # else a concurrent twin was accepted first
                record = state.accept(SEND, api_id, "mms", list(phones), None, lambda p: outcome(p, config.seed))
                require(record is not None, "ERROR_BALANCE")
                answer = {"code": "OK", "message": CODES["OK"], "task_id": record.provider_id(0)}
                ih.answers[(api_id, request_id)] = (answer, time.monotonic() + DEDUP_S)
            logged(body, answer, duplicate=False)
        if state.draw(faults.stall_after_accept_rate):
            await asyncio.sleep(faults.stall_s)  # accepted and recorded; the client may time out first
        return JSONResponse(answer)

    async def create_template(body: dict, api_id: str, request_id: str) -> Response:
        title = body.get("title")
        require(isinstance(title, str) and title.strip(), "ERROR_TITLE")
        check_frames(body.get("content"), ih.max_bytes)
        require(isinstance(body.get("sign_name"), str) and SIGN_NAME.fullmatch(body["sign_name"]), "ERROR_SIGN_NAME")
        with ih.lock:
            if (answer := remembered((api_id, request_id))) is None:
                tid, rejected = next(ih.template_ids), "REJECT" in title.upper()
                ih.templates[tid] = SimTemplate(api_id, title, "FAIL" if rejected else "SUCCESS",
                                                "模板内容不符合规范" if rejected else "审核通过",
                                                time.monotonic() + config.report_delay_s)
                answer = {"code": "OK", "message": CODES["OK"], "template_id": tid}
                ih.answers[(api_id, request_id)] = (answer, time.monotonic() + DEDUP_S)
        return JSONResponse(answer)

    async def balance(body: dict, api_id: str, request_id: str) -> Response:
        amount = state.balance(api_id)  # one balance per credential in the shared state: every product shows it
        value = int(amount) if amount == amount.to_integral_value() else float(amount)
        return JSONResponse({"code": "OK", "message": "请求成功", "data": [
            {"product_id": pid, "product_name": name, "balance": value}
            for pid, name in sorted(ih.products_of(api_id).items())]})

    def bind(path: str, handler: Any) -> None:
        async def endpoint(request: Request) -> Response:
            faults = state.faults
            if faults.latency_s:
                await asyncio.sleep(faults.latency_s)
            if state.draw(faults.error_5xx_rate):
                state.count_5xx()
                return PlainTextResponse("Service Unavailable", status_code=503)
            with ih.lock:
                ih.fresh()
            try:
                body = json.loads(await request.body())
            except ValueError:  # not JSON, or not UTF-8
                body = None
            try:
                return await handler(body, *auth(body))
            except Refused as exc:
                state.refuse(str(exc))
                return JSONResponse({"code": str(exc), "message": CODES[str(exc)]})

        router.add_api_route(path, endpoint, methods=["POST"], include_in_schema=False)

    bind(SEND, send)
    bind(BALANCE, balance)
    bind(TEMPLATE, create_template)

    def known(api_id: str) -> None:
        if api_id not in config.ihuyi_apps:
            raise HTTPException(404, f"unknown api_id {api_id!r}")
        ih.fresh()

    @router.post("/_sim/ihuyi/push")
    def set_push(body: PushIn) -> dict:
        with ih.lock:
            known(body.api_id)
            ih.push[body.api_id] = body
        ih.ensure_pusher()
        return body.model_dump()

    @router.delete("/_sim/ihuyi/push")
    def clear_push(api_id: str) -> dict:
        with ih.lock:
            known(api_id)
            ih.push.pop(api_id, None)
        return {"api_id": api_id}

    @router.post("/_sim/ihuyi/audit")
    def audit(body: AuditIn) -> dict:
        with ih.lock:
            known(body.api_id)
            template = ih.templates.get(body.template_id)
            if template is None or template.api_id != body.api_id:
                raise HTTPException(404, f"no template {body.template_id} for {body.api_id!r}")
            template.code, template.due, template.pushed = body.code, time.monotonic(), False
            template.message = body.message or ("审核通过" if body.code == "SUCCESS" else "模板内容不符合规范")
        return body.model_dump()

    @router.post("/_sim/ihuyi/product")
    def add_product(body: ProductIn) -> dict:
        with ih.lock:
            known(body.api_id)
            ih.products.setdefault(body.api_id, {})[body.product_id] = body.product_name
        return body.model_dump()

    @router.post("/_sim/ihuyi/limits")
    def limits(body: dict) -> dict:
        max_kb = body.get("max_kb")
        if not isinstance(max_kb, int) or max_kb <= 0:
            raise HTTPException(422, "max_kb must be a positive integer")
        with ih.lock:
            ih.fresh()
            ih.max_bytes = max_kb * 1024
        return {"max_kb": max_kb}

    @router.get("/_sim/ihuyi/requests")
    def list_requests() -> list[dict]:
        with ih.lock:
            ih.fresh()
            return list(ih.log)

    @router.get("/_sim/ihuyi/templates")
    def list_templates() -> dict:
        with ih.lock:
            ih.fresh()
            return {str(tid): {"api_id": t.api_id, "title": t.title, "status": t.status(), "code": t.code,
                               "message": t.message, "pushed": t.pushed} for tid, t in ih.templates.items()}

    @router.get("/_sim/ihuyi/stats")
    def stats() -> dict:
        with ih.lock:
            ih.fresh()
            return dict(ih.stats)

    return router
