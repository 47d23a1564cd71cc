"""The simulated ihuyi MMS's control routes (JSON), for tests and demos; not part of ihuyi's API.

  POST   /_sim/ihuyi/push {"api_id", "receipt_url"?, "mo_url"?, "template_url"?, "mo_rate"?, "repeat"?, "retry_s"?}
         push receipts, replies (a share `mo_rate` of delivered phones answer) and audits; `repeat` delivers
         every push that many times (a repeat after a lost `success`); DELETE /_sim/ihuyi/push?api_id=
         (`mo_url` also gets the replies injected by the shared POST /_sim/reply, which wait until one is set)
  POST   /_sim/ihuyi/audit {"api_id", "template_id", "code", "message"?}   audit a template now
  POST   /_sim/ihuyi/product {"api_id", "product_id", "product_name"};  POST /_sim/ihuyi/limits {"max_kb"}
  GET    /_sim/ihuyi/requests (every batchSend: request_id, timestamp, signature, task_id, phones, duplicate)
  GET    /_sim/ihuyi/templates;  GET /_sim/ihuyi/stats
"""
from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from providers.simulator.ihuyi.push import IhuyiPusher
from providers.simulator.ihuyi.state import AUDIT_MESSAGES, IhuyiSim, PushIn, ihuyi_apps


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


def ihuyi_control_router(ih: IhuyiSim, pusher: IhuyiPusher) -> APIRouter:
    """The /_sim/ihuyi/* routes over `ih`; setting a push target starts `pusher`."""
    router = APIRouter()

    def known(api_id: str) -> None:
        if api_id not in ihuyi_apps(ih.state.config):
            raise HTTPException(404, f"unknown api_id {api_id!r}")
        ih.fresh()

    @router.post("/_sim/ihuyi/push")
    def set_push(body: PushIn) -> dict:
        with ih.lock:
            known(body.api_id)
            ih.push[body.api_id] = body
        pusher.ensure_running()
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
            template.message = body.message or AUDIT_MESSAGES[body.code]
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
