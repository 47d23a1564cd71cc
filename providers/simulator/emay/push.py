"""Emay report pushes (document 001): ready reports POSTed to an appId's URL, plain or encrypted, in batches.

Control routes (JSON), for tests, the demo and benchmarks:
  POST   /_sim/push {"app_id","url","encrypted"}   push that app's reports; DELETE /_sim/push?app_id=
While an app has a push target its reports are pushed, not handed out by getReport; a batch whose push
failed goes back to getReport.
"""
from __future__ import annotations

import gzip
import json
import logging
import threading

import requests
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from providers.simulator.emay.common import EmayApp, emay_apps
from providers.simulator.emay.voice import report_json
from providers.simulator.state import PushTarget, ReportRef, SimState

log = logging.getLogger("msgrelay.simulator")

PUSH_BATCH = 500
PUSH_RETRIES = 3  # after the first attempt
PUSH_BACKOFF_S = 0.05  # doubled at each retry
PUSH_TIMEOUT_S = 5.0
PUSH_IDLE_S = 0.05  # how often the pusher looks for ready reports
AES_KEY_BYTES = (16, 24, 32)


def encrypt_push(body: bytes, secret_key: str) -> bytes:
    """gzip, then AES/ECB/PKCS5Padding keyed with the raw secretKey bytes (the document's push form)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(gzip.compress(body)) + padder.finalize()
    encryptor = Cipher(algorithms.AES(secret_key.encode("utf-8")), modes.ECB()).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


class Pusher(threading.Thread):
    """Background thread pushing ready reports to each app's push target, in batches of up to 500.

    It runs until the app shuts down (``SimState.closing``).
    """

    def __init__(self, state: SimState, apps: dict[str, EmayApp]) -> None:
        super().__init__(name="sim-pusher", daemon=True)
        self.state = state
        self.apps = apps
        self.session = requests.Session()

    def run(self) -> None:
        closing = self.state.closing
        while not closing.is_set():
            busy = False
            for app_id, target in self.state.push_targets().items():
                generation = self.state.generation
                batch = self.state.take_reports(app_id, PUSH_BATCH, for_push=True)
                if batch:
                    busy = True
                    if not self.deliver(app_id, target, batch):
                        self.state.hold(app_id, batch, generation=generation)
            if not busy:
                closing.wait(PUSH_IDLE_S)
        self.session.close()

    def deliver(self, app_id: str, target: PushTarget, batch: list[ReportRef]) -> bool:
        """POST one batch, retrying; True only when the receiver answered `success`."""
        seed = self.state.config.seed
        body = json.dumps({"code": "SUCCESS", "data": [report_json(r, seed) for r in batch]}, ensure_ascii=False)
        headers = {"appId": app_id}
        if target.encrypted:
            payload = encrypt_push(body.encode("utf-8"), self.apps[app_id].secret_key)
            headers["Content-Type"] = "application/octet-stream"
        else:
            payload = body.encode("utf-8")
            headers["Content-Type"] = "application/json; charset=UTF-8"
        for attempt in range(1 + PUSH_RETRIES):
            if attempt and self.state.closing.wait(PUSH_BACKOFF_S * 2 ** (attempt - 1)):
                break
            self.state.count_push("attempts")
            try:
                answer = self.session.post(target.url, data=payload, headers=headers, timeout=PUSH_TIMEOUT_S)
                if answer.text.strip() == "success":
                    self.state.count_push("delivered_batches")
                    self.state.count_push("delivered_reports", len(batch))
                    return True
            except requests.RequestException as exc:
                log.info("push to app %s failed: %s", app_id, type(exc).__name__)
        self.state.count_push("failed_batches")
        return False


class PushIn(BaseModel):
    app_id: str
    url: str
    encrypted: bool = False


def push_router(state: SimState) -> APIRouter:
    """/_sim/push over the Emay apps of `state`; setting a target starts the pusher unless it runs."""
    router = APIRouter()
    apps = emay_apps(state.config)
    pushers: list[Pusher] = []

    def ensure_pusher() -> None:
        if not pushers or not pushers[-1].is_alive():
            pushers.append(Pusher(state, apps))
            pushers[-1].start()

    def known(app_id: str) -> EmayApp:
        if app_id not in apps:
            raise HTTPException(404, f"unknown app_id {app_id!r}")
        return apps[app_id]

    @router.post("/_sim/push")
    def set_push(body: PushIn) -> dict:
        app = known(body.app_id)
        if body.encrypted and len(app.secret_key.encode("utf-8")) not in AES_KEY_BYTES:
            raise HTTPException(422, "encrypted pushes need a secretKey of 16, 24 or 32 bytes (an AES key)")
        state.set_push(body.app_id, PushTarget(body.url, body.encrypted))
        ensure_pusher()
        return body.model_dump()

    @router.delete("/_sim/push")
    def clear_push(app_id: str) -> dict:
        known(app_id)
        state.set_push(app_id, None)
        return {"app_id": app_id}

    return router
