"""ihuyi push receivers: /callbacks/ihuyi/{account}/{token}/receipt|mo|template (document 002, 6–8).

ihuyi signs none of its pushes, so the account's secret `callback_token` in the path is what keeps
strangers out: a wrong token is a 404 and nothing is read or stored. The answer is the plain text `success`
only once the data is committed; anything else makes ihuyi push again (at most 3 times), and every store
here is idempotent, so a repeat changes nothing.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from api.routes_callbacks import account_for
from msgrelay.accounts import Account
from msgrelay.inbound import store_inbound
from msgrelay.reports import ingest
from msgrelay.templates import apply_audits
from providers.errors import InvalidInput
from providers.ihuyi_push import parse_mo_push, parse_receipt_push
from providers.ihuyi_templates import parse_template_push

router = APIRouter(tags=["callbacks"])


async def _receive(account: str, token: str, request: Request, parse: Callable[[bytes], list],
                   store: Callable[[Account, list], Any]) -> str:
    """Authenticate by token, parse (400 on a bad body), store in a worker thread, then answer `success`."""
    acct = account_for(account, token, "ihuyi_")
    body = await request.body()
    try:
        items = parse(body)
    except InvalidInput as exc:
        raise HTTPException(status_code=400, detail=f"{exc.field}: {exc.rule}") from None
    await run_in_threadpool(store, acct, items)
    return "success"


def _store_receipts(acct: Account, reports: list) -> int:
    return ingest(acct, reports, "push")


@router.post("/ihuyi/{account}/{token}/receipt", response_class=PlainTextResponse)
async def ihuyi_receipt(account: str, token: str, request: Request) -> str:
    """Delivery receipts (task_id, phone, code DELIVERED or a failure code, times)."""
    return await _receive(account, token, request, parse_receipt_push, _store_receipts)


@router.post("/ihuyi/{account}/{token}/mo", response_class=PlainTextResponse)
async def ihuyi_mo(account: str, token: str, request: Request) -> str:
    """Replies from recipients (task_id, phone, content, dest_code, times), stored once each."""
    return await _receive(account, token, request, parse_mo_push, store_inbound)


@router.post("/ihuyi/{account}/{token}/template", response_class=PlainTextResponse)
async def ihuyi_template(account: str, token: str, request: Request) -> str:
    """Template audit results (template_id, code SUCCESS|FAIL, message)."""
    return await _receive(account, token, request, parse_template_push, apply_audits)
