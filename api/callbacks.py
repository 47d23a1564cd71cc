"""Provider push receivers, one dispatch for every vendor: `/callbacks/<push_path>/<account>/<token>[/<what>]`.

A provider declares its `push_path` and its `pushes` (what follows the token, how to decode the body, what
it carries); this module authenticates by the account's secret callback token (a wrong token, or an account
without one, is a 404 and nothing is read or stored), decodes (400 on a bad body, and on text no column can keep:
a lone surrogate, a NUL), stores in a worker thread, and answers the plain text `success` only once the data is
committed. Every store is idempotent, so a provider's repeated push changes nothing.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from api.inputs import answers, field_name, first_problem, safe_text
from msgrelay.accounts import Account, get_accounts
from msgrelay.inbound import store_inbound
from msgrelay.reports import ingest
from msgrelay.templates import apply_audits
from providers.base import Carries, Push
from providers.errors import InvalidInput
from providers.registry import provider_of

router = APIRouter(tags=["callbacks"], responses=answers(
    s400="not a push this provider makes, or text no column can keep (the detail names the field)",
    s404="no such account, or not its token", s413="the body is larger than MSGRELAY_MAX_BODY_BYTES"))

#: where each kind of pushed item is stored
STORES: Mapping[Carries, Callable[[Account, list[Any]], Any]] = {
    Carries.REPORTS: lambda account, reports: ingest(account, reports, "push"),
    Carries.INBOUND: store_inbound,
    Carries.TEMPLATE_AUDITS: apply_audits,
}


def push_for(vendor: str, account: str, token: str, what: str) -> tuple[Account, Push]:
    """The account and the push it receives here when the token matches; 404 otherwise (no hint whether the
    account exists)."""
    acct = get_accounts().get(account)
    expected = acct.callback_token.get_secret_value() if acct and acct.callback_token else None
    provider = provider_of(acct) if acct else None
    push = provider.pushes.get(what) if provider and provider.push_path == vendor else None
    if push is None or expected is None or not secrets.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(status_code=404, detail="not found")
    return acct, push


async def receive(vendor: str, account: str, token: str, what: str, request: Request) -> str:
    """Authenticate, decode (400 on a bad body), store in a worker thread, then answer `success`."""
    acct, push = push_for(vendor, account, token, what)
    body = await request.body()
    try:
        items = push.decode(acct, request.headers, body)
    except InvalidInput as exc:
        raise HTTPException(status_code=400, detail=safe_text(f"{exc.field}: {exc.rule}")) from None
    if (problem := first_problem(items)) is not None:
        place, rule = problem
        raise HTTPException(status_code=400, detail=f"body{field_name(place)}: {rule}")
    await run_in_threadpool(STORES[push.carries], acct, items)
    return "success"


@router.post("/{vendor}/{account}/{token}", response_class=PlainTextResponse)
async def push(vendor: str, account: str, token: str, request: Request) -> str:
    """A push whose URL ends at the token (Emay reports, plain or AES/ECB + gzip)."""
    return await receive(vendor, account, token, "", request)


@router.post("/{vendor}/{account}/{token}/{what}", response_class=PlainTextResponse)
async def push_of_kind(vendor: str, account: str, token: str, what: str, request: Request) -> str:
    """A push whose last segment names what it carries (ihuyi receipt, mo, template)."""
    return await receive(vendor, account, token, what, request)
