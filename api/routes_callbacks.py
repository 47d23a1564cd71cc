"""Provider push receivers: authenticated by the account's secret callback token in the path."""
from __future__ import annotations

import secrets

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from msgrelay.accounts import Account, get_accounts
from msgrelay.reports import ingest
from providers.errors import InvalidInput
from providers.registry import get_provider

router = APIRouter(tags=["callbacks"])


def account_for(account: str, token: str, provider_prefix: str) -> Account:
    """The account when the token matches; 404 otherwise (no hint whether the account exists)."""
    acct = get_accounts().get(account)
    expected = acct.callback_token.get_secret_value() if acct and acct.callback_token else None
    if (acct is None or expected is None or not acct.provider.startswith(provider_prefix)
            or not secrets.compare_digest(token.encode(), expected.encode())):
        raise HTTPException(status_code=404, detail="not found")
    return acct


@router.post("/emay/{account}/{token}", response_class=PlainTextResponse)
async def emay_push(account: str, token: str, request: Request) -> str:
    """Emay pushed reports (plain JSON or AES/ECB + gzip); answers `success` once stored."""
    acct = account_for(account, token, "emay_")
    provider = get_provider(acct.provider)
    body = await request.body()
    try:
        reports = provider.decode_push(acct, request.headers, body)
    except InvalidInput as exc:
        raise HTTPException(status_code=400, detail=f"{exc.field}: {exc.rule}") from None
    await run_in_threadpool(ingest, acct, reports, "push")
    return "success"
