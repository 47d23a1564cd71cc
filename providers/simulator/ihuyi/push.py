"""The simulated ihuyi MMS's pushes: receipts (6.2), replies (7.2) and template audits (8.2), by one thread.

Each push is POSTed up to 3 times until the answer is `success`; `repeat` then delivers it again. Receipt
outcomes and who replies are deterministic per phone, so tests can predict them. Replies injected by
/_sim/reply (``reply``) wait in the shared state until the api_id has a `mo_url`, then go out like the others.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from datetime import datetime
from typing import Any

import requests

from providers.simulator.base import BEIJING
from providers.simulator.ihuyi.state import IhuyiSim, PushIn
from providers.simulator.state import ReportRef, RequestRecord

log = logging.getLogger("msgrelay.simulator.ihuyi")
PUSH_BATCH, PUSH_ATTEMPTS, IDLE_S = 1000, 3, 0.05
RECEIPT_WORDS = {"DELIVERED": "用户接收成功", "UNDELIV": "用户接收失败", "EXPIRED": "超时未接收", "REJECTD": "运营商拒绝"}


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


def mo_record(task_id: str, phone: str, content: str, send_time: str, received_at: float) -> dict[str, str]:
    """7.2's reply record: task_id, phone, content, dest_code (our channel extension), send_time, receive_time."""
    return {"task_id": task_id, "phone": phone, "content": content, "dest_code": "10690" + phone[-4:],
            "send_time": send_time, "receive_time": beijing(received_at)}


def mo_json(ref: ReportRef) -> dict:
    """7.2's reply from one recipient to its MMS."""
    record, i = ref
    return mo_record(record.provider_id(0), record.mobiles[i], "收到，谢谢", beijing(record.at), time.time())


def reply(record: RequestRecord | None, phone: str, content: str, received_at: float) -> dict[str, str]:
    """A reply injected by /_sim/reply: under the task_id and send_time of the MMS it answers, empty when none
    is known."""
    if record is None:
        return mo_record("", phone, content, "", received_at)
    return mo_record(record.provider_id(0), phone, content, beijing(record.at), received_at)


class IhuyiPusher:
    """The push thread: runs while some api_id has a push target, started again by `ensure_running`."""

    def __init__(self, sim: IhuyiSim) -> None:
        self.sim = sim
        self.thread: threading.Thread | None = None
        self.http = requests.Session()

    def ensure_running(self) -> None:
        """Start the push thread unless it runs (it stops by itself when no api_id has a push target)."""
        with self.sim.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.run, name="sim-ihuyi-pusher", daemon=True)
                self.thread.start()

    def run(self) -> None:
        """Push ready receipts (and replies), injected replies and due audits until no api_id has a push
        target."""
        sim = self.sim
        while True:
            with sim.lock:
                sim.fresh()
                if not sim.push:
                    self.thread = None
                    return
                targets = dict(sim.push)
            busy = False
            for api_id, cfg in targets.items():
                if cfg.receipt_url and (refs := sim.state.take_reports(api_id, PUSH_BATCH, for_push=True)):
                    busy = True
                    self.deliver(cfg.receipt_url, [receipt_json(r) for r in refs], cfg, "receipt")
                    mo = [mo_json(r) for r in refs if r.record.states[r.index] == "DELIVERED"
                          and replies(r.record.mobiles[r.index], cfg.mo_rate)]
                    if mo and cfg.mo_url:
                        self.deliver(cfg.mo_url, mo, cfg, "mo")
                if cfg.mo_url and (injected := sim.state.take_replies(api_id, PUSH_BATCH)):
                    busy = True
                    self.deliver(cfg.mo_url, injected, cfg, "mo")
                if cfg.template_url:
                    now = time.monotonic()
                    with sim.lock:
                        due = [(tid, t) for tid, t in sim.templates.items()
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
        count = self.sim.count
        for attempt in range(PUSH_ATTEMPTS):
            if attempt:
                time.sleep(cfg.retry_s * attempt)
            count(f"{kind}_attempts")
            try:
                if self.http.post(url, data=data, headers=headers, timeout=10).text.strip() == "success":
                    break
            except requests.RequestException as exc:
                log.info("ihuyi %s push failed: %s", kind, type(exc).__name__)
        else:
            count(f"{kind}_failed")  # ihuyi gives up after 3 pushes
            return False
        count(f"{kind}_delivered")
        for _ in range(cfg.repeat - 1):
            count(f"{kind}_repeated")
            try:
                self.http.post(url, data=data, headers=headers, timeout=10)
            except requests.RequestException:
                pass  # the first delivery counted; a repeat is extra
        return True
