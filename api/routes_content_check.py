"""POST /v1/accounts/{account}/check-content: ask 企业信使 whether a text contains forbidden keywords."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from msgrelay.accounts import get_accounts
from providers.errors import ProviderError
from providers.qyxs_sms import check_account_content

router = APIRouter(tags=["accounts"])


class ContentIn(BaseModel):
    """The text to check."""

    content: str


class ContentChecked(BaseModel):
    """The platform's verdict: `ok`, and its own words (the hit text when not ok)."""

    account: str
    ok: bool
    message: str


@router.post("/accounts/{account}/check-content", response_model=ContentChecked)
async def check_content(account: str, body: ContentIn) -> ContentChecked:
    """One keyword check (企业信使 action=checkkeyword); 422 names `account` or `content`, 502 when the
    platform cannot answer."""
    try:
        verdict = await run_in_threadpool(check_account_content, get_accounts(), account, body.content)
    except ProviderError as exc:  # the platform's code and text only: never the credentials
        raise HTTPException(502, f"the platform did not check the content: {exc.code} {exc.message}".strip()) from None
    return ContentChecked(account=account, ok=verdict.ok, message=verdict.message)
