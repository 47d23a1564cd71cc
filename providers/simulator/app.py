"""The simulator's FastAPI app: every registered vendor's routes plus the shared control routes (/_sim/*).

Control routes (JSON), for tests, the demo and benchmarks:
  GET    /_sim/health                         {"ok": true}
  GET    /_sim/requests?endpoint=&offset=&limit=   [{"id","endpoint","app_id","faults":[…],"recipients":[…],"at"}]
                                             every accepted request, those a fault hit after acceptance too
  GET    /_sim/stats                          counters, see SimState.stats_json; "faults" met by endpoint
  GET    /_sim/outcomes                       {"by_custom_id": {id: state}, "counts": {state: n}}
  POST   /_sim/balance  {"app_id","balance"}  set a balance (any credential id)
  GET|POST|DELETE /_sim/faults                read, replace, clear the injected faults (``faults.Faults``)
  POST   /_sim/secret {"app_id","secret_key"} change a credential's secret at the "provider" (the attribute its
                                             vendor names: Emay secretKey, qyxs password, ihuyi api_key)
  POST   /_sim/reply {"app_id","mobile","content"}   that mobile answers that text (an MO) to a vendor with
                                             replies, under the app's latest request to it (else an empty task id),
                                             received now: qyxs hands it out once by the userid's next
                                             /callApi.aspx action=query (<callbox>), ihuyi pushes it (7.2) to the
                                             api_id's mo_url by the push thread, retried like every push (it
                                             waits until /_sim/ihuyi/push sets one). Answers {"app_id","vendor",
                                             "reply": the record as it will be handed out}; 404 for an app_id no
                                             such vendor holds, 422 naming a missing or empty field
  POST   /_sim/reset                          forget records, reports, injected replies, faults, push targets;
                                             secrets restored
Vendors add their own: Emay's /_sim/push (``emay.push``), ihuyi's /_sim/ihuyi/* (``ihuyi.control``).
"""
from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal, InvalidOperation
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from providers.simulator.base import ReplyMaker
from providers.simulator.config import SimConfig
from providers.simulator.registry import VENDORS
from providers.simulator.state import Faults, SimState


class BalanceIn(BaseModel):
    app_id: str
    balance: str | int | float


class SecretIn(BaseModel):
    app_id: str
    secret_key: str


REPLY_FIELDS = ("app_id", "mobile", "content")  # /_sim/reply's body: each a non-empty string


def create_app(config: SimConfig) -> FastAPI:
    """The simulator app for `config`: every registered vendor's routes and the control routes."""
    unknown = set(config.credentials) - {vendor.name for vendor in VENDORS}
    if unknown:
        raise ValueError(f"credentials for vendors the simulator does not know: {sorted(unknown)}")
    state = SimState(config)

    def secrets() -> Iterator[tuple[str, Any, str]]:
        """(credential id, credential, its secret attribute) for every credential, in registry order."""
        for vendor in VENDORS:
            for key, cred in config.credentials_of(vendor.name).items():
                yield key, cred, vendor.secret_attr

    original_secrets = [(cred, attr, getattr(cred, attr)) for _, cred, attr in secrets()]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.closing.set()  # the vendors' background pushers finish

    app = FastAPI(title="msgrelay provider simulator", lifespan=lifespan)
    app.state.sim = state
    for vendor in VENDORS:
        app.include_router(vendor.router(state))

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

    @app.post("/_sim/secret")
    def set_secret(body: SecretIn) -> dict:
        """Change a credential's secret at the "provider" (the first vendor in the registry holding that id)."""
        for key, cred, attr in secrets():
            if key == body.app_id:
                setattr(cred, attr, body.secret_key)
                return {"app_id": body.app_id}
        raise HTTPException(404, f"unknown app_id {body.app_id!r}")

    def replying_vendor(app_id: str) -> tuple[str, ReplyMaker]:
        """The name and reply maker of the first vendor (registry order) that takes replies and holds `app_id`,
        or 404."""
        for vendor in VENDORS:
            if vendor.reply is not None and app_id in config.credentials_of(vendor.name):
                return vendor.name, vendor.reply
        names = ", ".join(vendor.name for vendor in VENDORS if vendor.reply is not None)
        raise HTTPException(404, f"unknown app_id {app_id!r}: no credential of a vendor taking replies ({names})")

    @app.post("/_sim/reply")
    def inject_reply(body: dict[str, Any]) -> dict:
        """That mobile answers that text: kept in the vendor's shape until its routes hand it out."""
        for name in REPLY_FIELDS:
            value = body.get(name)
            if not isinstance(value, str) or not value.strip():
                raise HTTPException(422, f"{name} is required: a non-empty string")
        app_id, mobile, content = (body[name] for name in REPLY_FIELDS)
        vendor, make = replying_vendor(app_id)
        reply = make(state.last_request_to(app_id, mobile), mobile, content, time.time())
        state.inject_reply(app_id, reply)
        return {"app_id": app_id, "vendor": vendor, "reply": reply}

    @app.post("/_sim/reset")
    def reset() -> dict:
        for cred, attr, secret in original_secrets:
            setattr(cred, attr, secret)
        state.reset()
        return {"ok": True}

    return app


def freeze_survivors(phase: str, info: dict) -> None:
    """gc callback: after a generation-1 collection, what it promoted to the oldest generation is frozen.

    The simulator keeps a record of every request it accepted (to count duplicates), and a full collection over
    a million of them took 90–200 ms every ten seconds in a 1,000,000-recipient run, during which no request was
    read: those pauses were the slowest verification calls. Frozen objects are still freed by reference
    counting; only garbage cycles among them are kept, which a simulator can afford."""
    if phase == "stop" and info.get("generation") == 1:
        gc.freeze()


def serve(config: SimConfig, *, host: str = "127.0.0.1", port: int = 18080) -> None:
    """Run the simulator until interrupted (blocking; access log off)."""
    gc.collect()
    gc.freeze()  # start-up's objects: never scanned again
    gc.callbacks.append(freeze_survivors)
    # a keep-alive longer than clients' idle gaps, so a pooled connection is rarely closed under a request
    # h11 on asyncio's own loop, whatever else is installed: the reset fault reaches into the transport's socket,
    # which uvloop hands out as a new socket object that fails once the client has gone
    uvicorn.run(
        create_app(config), host=host, port=port, access_log=False, log_level="warning", timeout_keep_alive=65,
        loop="asyncio", http="h11",
    )
