"""The simulator's FastAPI app: provider routes, control routes (/_sim/*) and the report pusher.

Control routes (JSON), for tests, the demo and benchmarks:
  GET    /_sim/health                         {"ok": true}
  GET    /_sim/requests?endpoint=&offset=&limit=   [{"id","endpoint","app_id","recipients":[…],"at"}]
  GET    /_sim/stats                          counters, see SimState.stats_json
  GET    /_sim/outcomes                       {"by_custom_id": {id: state}, "counts": {state: n}}
  POST   /_sim/balance  {"app_id","balance"}  set a balance
  GET|POST|DELETE /_sim/faults                read, replace, clear the injected faults
  POST   /_sim/push {"app_id","url","encrypted"}   push that app's reports; DELETE /_sim/push?app_id=
  POST   /_sim/secret {"app_id","secret_key"} change a credential at the "provider" (Emay secretKey, qyxs
                                             password by userid, ihuyi api_key by api_id)
  POST   /_sim/reset                          forget records, reports, faults, push targets; secrets restored
"""
from __future__ import annotations

import gzip
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal, InvalidOperation

import requests
import uvicorn
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from providers.simulator.config import SimConfig
from providers.simulator.emay import emay_router, report_json
from providers.simulator.emay_ims import ims_router
from providers.simulator.ihuyi import ihuyi_router
from providers.simulator.qyxs import qyxs_router
from providers.simulator.state import Faults, PushTarget, ReportRef, SimState

log = logging.getLogger("msgrelay.simulator")

PUSH_BATCH = 500
PUSH_RETRIES = 3  # after the first attempt
PUSH_BACKOFF_S = 0.05  # doubled at each retry
PUSH_TIMEOUT_S = 5.0
PUSH_IDLE_S = 0.05  # how often the pusher looks for ready reports


def encrypt_push(body: bytes, secret_key: str) -> bytes:
    """gzip, then AES/ECB/PKCS5Padding keyed with the raw secretKey bytes (the document's push form)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(gzip.compress(body)) + padder.finalize()
    encryptor = Cipher(algorithms.AES(secret_key.encode("utf-8")), modes.ECB()).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


class Pusher(threading.Thread):
    """Background thread pushing ready reports to each app's push target, in batches of up to 500."""

    def __init__(self, state: SimState) -> None:
        super().__init__(name="sim-pusher", daemon=True)
        self.state = state
        self.stopping = threading.Event()
        self.session = requests.Session()

    def run(self) -> None:
        while not self.stopping.is_set():
            busy = False
            for app_id, target in self.state.push_targets().items():
                generation = self.state.generation
                batch = self.state.take_reports(app_id, PUSH_BATCH, for_push=True)
                if batch:
                    busy = True
                    if not self.deliver(app_id, target, batch):
                        self.state.hold(app_id, batch, generation=generation)
            if not busy:
                self.stopping.wait(PUSH_IDLE_S)
        self.session.close()

    def stop(self) -> None:
        """Ask the thread to finish and wait for it."""
        self.stopping.set()
        self.join(timeout=PUSH_TIMEOUT_S + 1)

    def deliver(self, app_id: str, target: PushTarget, batch: list[ReportRef]) -> bool:
        """POST one batch, retrying; True only when the receiver answered `success`."""
        seed = self.state.config.seed
        body = json.dumps({"code": "SUCCESS", "data": [report_json(r, seed) for r in batch]}, ensure_ascii=False)
        headers = {"appId": app_id}
        if target.encrypted:
            payload = encrypt_push(body.encode("utf-8"), self.state.config.emay_apps[app_id].secret_key)
            headers["Content-Type"] = "application/octet-stream"
        else:
            payload = body.encode("utf-8")
            headers["Content-Type"] = "application/json; charset=UTF-8"
        for attempt in range(1 + PUSH_RETRIES):
            if attempt and self.stopping.wait(PUSH_BACKOFF_S * 2 ** (attempt - 1)):
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


class BalanceIn(BaseModel):
    app_id: str
    balance: str | int | float


class SecretIn(BaseModel):
    app_id: str
    secret_key: str


class PushIn(BaseModel):
    app_id: str
    url: str
    encrypted: bool = False


def create_app(config: SimConfig) -> FastAPI:
    """The simulator app for `config`; the pusher runs for the app's lifespan."""
    state = SimState(config)
    pushers: list[Pusher] = []
    # (credentials, attribute) per provider: what /_sim/secret rotates and /_sim/reset restores
    secret_fields = ((config.emay_apps, "secret_key"), (config.qyxs_users, "password"), (config.ihuyi_apps, "api_key"))
    original_secrets = [(creds, key, attr, getattr(cred, attr))
                        for creds, attr in secret_fields for key, cred in creds.items()]

    def ensure_pusher() -> None:
        # started with the app; also on demand, in case the app runs without its lifespan (e.g. mounted)
        if not pushers or not pushers[-1].is_alive():
            pushers.append(Pusher(state))
            pushers[-1].start()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ensure_pusher()
        try:
            yield
        finally:
            for pusher in pushers:
                pusher.stop()

    app = FastAPI(title="msgrelay provider simulator", lifespan=lifespan)
    app.state.sim = state
    for router in (emay_router, ims_router, qyxs_router, ihuyi_router):
        app.include_router(router(state))

    def known(app_id: str) -> None:
        if app_id not in config.balances():
            raise HTTPException(404, f"unknown app_id {app_id!r}")

    @app.get("/_sim/health")
    def health() -> dict:
        return {"ok": True}

    @app.get("/_sim/requests")
    def list_requests(endpoint: str | None = None, offset: int = 0, limit: int | None = None) -> list[dict]:
        return state.requests_json(endpoint, offset, limit)

    @app.get("/_sim/stats")
    def stats() -> dict:
        return state.stats_json()

    @app.get("/_sim/outcomes")
    def outcomes() -> dict:
        return state.outcomes_json()

    @app.post("/_sim/balance")
    def set_balance(body: BalanceIn) -> dict:
        known(body.app_id)
        try:
            value = Decimal(str(body.balance))
        except InvalidOperation:
            raise HTTPException(422, "balance must be a number") from None
        state.set_balance(body.app_id, value)
        return {"app_id": body.app_id, "balance": str(value)}

    @app.get("/_sim/faults")
    def get_faults() -> dict:
        return state.faults.model_dump()

    @app.post("/_sim/faults")
    def set_faults(faults: Faults) -> dict:
        state.set_faults(faults)
        return faults.model_dump()

    @app.delete("/_sim/faults")
    def clear_faults() -> dict:
        state.set_faults(Faults())
        return state.faults.model_dump()

    @app.post("/_sim/push")
    def set_push(body: PushIn) -> dict:
        known(body.app_id)
        if body.encrypted and len(config.emay_apps[body.app_id].secret_key.encode("utf-8")) not in (16, 24, 32):
            raise HTTPException(422, "encrypted pushes need a secretKey of 16, 24 or 32 bytes (an AES key)")
        state.set_push(body.app_id, PushTarget(body.url, body.encrypted))
        ensure_pusher()
        return body.model_dump()

    @app.delete("/_sim/push")
    def clear_push(app_id: str) -> dict:
        known(app_id)
        state.set_push(app_id, None)
        return {"app_id": app_id}

    @app.post("/_sim/secret")
    def set_secret(body: SecretIn) -> dict:
        """Change a credential at the "provider": Emay secretKey, qyxs password or ihuyi api_key."""
        for creds, attr in secret_fields:
            if body.app_id in creds:
                setattr(creds[body.app_id], attr, body.secret_key)
                return {"app_id": body.app_id}
        raise HTTPException(404, f"unknown app_id {body.app_id!r}")

    @app.post("/_sim/reset")
    def reset() -> dict:
        for creds, key, attr, secret in original_secrets:
            setattr(creds[key], attr, secret)
        state.reset()
        return {"ok": True}

    return app


def serve(config: SimConfig, *, host: str = "127.0.0.1", port: int = 18080) -> None:
    """Run the simulator until interrupted (blocking; access log off)."""
    # a keep-alive longer than clients' idle gaps, so a pooled connection is rarely closed under a request
    uvicorn.run(
        create_app(config), host=host, port=port, access_log=False, log_level="warning", timeout_keep_alive=65
    )
