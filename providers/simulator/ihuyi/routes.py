"""ihuyi MMS (document 002) as the simulator serves it: batchSend, balance, templateCreate and three pushes.

An independent reading of the document: nothing here is shared with the client modules. The
document names no error code but "OK"; ours are the keys of CODES. A write (batchSend, templateCreate)
whose request_id this api_id used in the last 2 hours is not carried out again: it gets the first answer (a
batchSend repeated so counts as accepted again, so the faults after acceptance, ``faults``, hit it too).
ihuyi-only state lives in ``state`` and is forgotten whenever the shared state is reset.

The request checks are in ``checks``, the pushes in ``push``, the control routes
(/_sim/ihuyi/*: push targets, audits, products, limits, request log, templates, stats) in ``control``.
Templates are approved `report_delay_s` after creation, unless the title contains "REJECT".
"""
from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from providers.simulator.faults import add_route, stall_after_accept
from providers.simulator.ihuyi.checks import (
    CODES, MOBILE, SIGN_NAME, Refused, authenticate, check_frames, check_send_time, check_sign_name, check_title,
    require,
)
from providers.simulator.ihuyi.control import ihuyi_control_router
from providers.simulator.ihuyi.push import IhuyiPusher, outcome
from providers.simulator.ihuyi.state import AUDIT_MESSAGES, IhuyiSim, SimTemplate
from providers.simulator.state import SimState

SEND, BALANCE, TEMPLATE = "/mms/v1/batchSend", "/mms/v1/balance", "/mms/v1/templateCreate"
MAX_PHONES = 10_000


def ihuyi_router(state: SimState) -> APIRouter:
    """The ihuyi endpoints and control routes, answering from `state` and the ihuyi-only state."""
    router = APIRouter()
    ih, config = IhuyiSim(state), state.config

    async def send(body: dict, api_id: str, request_id: str) -> Response:
        with ih.lock:
            if (answer := ih.remembered((api_id, request_id))) is not None:
                ih.log_send(body, answer, duplicate=True)
                state.accepted_again()
                return JSONResponse(answer)
        faults = state.faults
        require(not state.draw_fault("over_speed", faults.over_speed_rate) and state.admit(api_id, time.monotonic()),
                "ERROR_OVER_SPEED")
        product = body.get("product_id")
        require(isinstance(product, int) and not isinstance(product, bool) and product in ih.products_of(api_id),
                "ERROR_PRODUCT_ID")
        phones = body.get("phone")
        require(isinstance(phones, list) and 0 < len(phones) <= MAX_PHONES, "ERROR_PHONE_NUMBER")
        require(all(isinstance(p, str) and MOBILE.fullmatch(p) and p not in state.bad_mobiles for p in phones),
                "ERROR_PHONE")
        if body.get("content"):  # 3.3: given both, the content is sent and the template ignored
            check_frames(body["content"], ih.max_bytes)
            check_title(body.get("title"))
            check_sign_name(body.get("sign_name"))
        else:
            tid = body.get("template_id")
            template = ih.templates.get(tid) if isinstance(tid, int) else None
            require(template and template.api_id == api_id and template.status() == "approved", "ERROR_TEMPLATE")
            require("sign_name" not in body or SIGN_NAME.fullmatch(str(body["sign_name"])), "ERROR_SIGN_NAME")
        check_send_time(body.get("send_time"))
        record = None
        with ih.lock:
            if (answer := ih.remembered((api_id, request_id))) is None:
                record = state.accept(SEND, api_id, "mms", list(phones), None, lambda p: outcome(p, config.seed))
                require(record is not None, "ERROR_BALANCE")
                answer = {"code": "OK", "message": CODES["OK"], "task_id": record.provider_id(0)}
                ih.remember((api_id, request_id), answer)
            else:  # a concurrent twin was accepted first: this one is its repeat
                state.accepted_again()
            ih.log_send(body, answer, duplicate=record is None)
        await stall_after_accept(state)
        return JSONResponse(answer)

    async def create_template(body: dict, api_id: str, request_id: str) -> Response:
        title = body.get("title")
        check_title(title)
        check_frames(body.get("content"), ih.max_bytes)
        check_sign_name(body.get("sign_name"))
        with ih.lock:
            if (answer := ih.remembered((api_id, request_id))) is None:
                tid, code = next(ih.template_ids), "FAIL" if "REJECT" in title.upper() else "SUCCESS"
                ih.templates[tid] = SimTemplate(api_id, title, code, AUDIT_MESSAGES[code],
                                                time.monotonic() + config.report_delay_s)
                answer = {"code": "OK", "message": CODES["OK"], "template_id": tid}
                ih.remember((api_id, request_id), answer)
        return JSONResponse(answer)

    async def balance(body: dict, api_id: str, request_id: str) -> Response:
        amount = state.balance(api_id)  # one balance per credential in the shared state: every product shows it
        value = int(amount) if amount == amount.to_integral_value() else float(amount)
        return JSONResponse({"code": "OK", "message": "请求成功", "data": [
            {"product_id": pid, "product_name": name, "balance": value}
            for pid, name in sorted(ih.products_of(api_id).items())]})

    def bind(path: str, handler: Any) -> None:
        async def respond(request: Request) -> Response:
            with ih.lock:
                ih.fresh()
            try:
                body = json.loads(await request.body())
            except ValueError:  # not JSON, or not UTF-8
                body = None
            try:
                return await handler(body, *authenticate(body, config))
            except Refused as exc:
                state.refuse(str(exc))
                return JSONResponse({"code": str(exc), "message": CODES[str(exc)]})

        add_route(router, state, path, respond)

    bind(SEND, send)
    bind(BALANCE, balance)
    bind(TEMPLATE, create_template)
    router.include_router(ihuyi_control_router(ih, IhuyiPusher(ih)))
    return router
