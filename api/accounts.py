"""Account-wide routes: balances, inbound messages, a provider's content check, provider-side templates."""
from __future__ import annotations

from typing import Any

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api import access
from api.access import Principal
from api.inputs import AccountFilter, Offset, StorableBody, answers
from models.statuses import TemplateStatus
from msgrelay import templates
from msgrelay.accounts import get_accounts
from msgrelay.balances import latest_balances
from msgrelay.content_check import check_account_content
from msgrelay.inbound import list_inbound
from providers.errors import AmbiguousError, ProviderError

router = APIRouter(tags=["accounts"])
Caller = Annotated[Principal, Depends(access.current)]
#: a producer's templates are its own: viewers read them, and operators act as producers too
Submitter = Annotated[Principal, Depends(access.require(access.Role.PRODUCER, access.Role.OPERATOR))]


@router.get("/balances")
def balances(principal: Caller) -> list[dict]:
    """The newest balance snapshot of every account (of the key's accounts)."""
    return [b for b in latest_balances() if access.can_see(principal, b["account"])]


@router.get("/inbound")
def inbound(principal: Caller, account: AccountFilter = None, limit: int = Query(100, ge=1, le=1000),
            offset: Offset = 0) -> list[dict]:
    """Inbound messages (MO) of every provider (of the key's accounts), newest first."""
    return list_inbound(account=account, limit=limit, offset=offset,
                        accounts=access.visible_accounts(principal, account))


class ContentIn(StorableBody):
    """The text to check."""

    content: str


class ContentChecked(BaseModel):
    """The platform's verdict: `ok`, and its own words (the hit text when not ok)."""

    account: str
    ok: bool
    message: str


@router.post("/accounts/{account}/check-content", response_model=ContentChecked,
             responses=answers(s502="the platform did not check the content"))
async def check_content(account: str, body: ContentIn, principal: Submitter) -> ContentChecked:
    """One keyword check (企业信使 action=checkkeyword); 422 names `account` or `content`, 502 when the
    platform cannot answer."""
    access.check_accounts(principal, [account])
    try:
        verdict = await run_in_threadpool(check_account_content, get_accounts(), account, body.content)
    except ProviderError as exc:  # the platform's code and text only: never the credentials
        raise HTTPException(502, f"the platform did not check the content: {exc.code} {exc.message}".strip()) from None
    return ContentChecked(account=account, ok=verdict.ok, message=verdict.message)


class TemplateIn(StorableBody):
    """POST /v1/accounts/{account}/templates: frames in ihuyi's own shape (or a text), and the MMS signature."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(description="the template's title (not shown in the MMS)")
    content: Any = Field(description='frames [[{"con_type", "ext_type", "data"}]], media base64; a text is one frame')
    sign_name: str = Field(description="the MMS signature in 【】, e.g. 【互亿无线】")
    purpose: str | None = Field(default=None, description="what the template is for (ihuyi's `purpose`)")


@router.post("/accounts/{account}/templates", status_code=201,
             responses=answers(s502="ihuyi refused the template or could not be reached"))
async def create_template(account: str, body: TemplateIn, principal: Submitter) -> dict:
    """Create the template at ihuyi and store it `pending` until the audit push; 422 for bad frames,
    502 when ihuyi refuses or cannot be reached."""
    access.check_accounts(principal, [account])
    try:
        return await run_in_threadpool(
            templates.create_template, get_accounts(), account, title=body.title, content=body.content,
            sign_name=body.sign_name, purpose=body.purpose)
    except ProviderError as exc:
        hint = " (ihuyi may have created it: list templates before retrying)" if isinstance(exc, AmbiguousError) else ""
        raise HTTPException(status_code=502, detail={"code": exc.code, "message": exc.message + hint}) from None


@router.get("/templates")
def list_templates(principal: Caller, account: AccountFilter = None,
                   status: TemplateStatus | None = None,
                   limit: int = Query(100, ge=1, le=1000), offset: Offset = 0) -> list[dict]:
    """Templates (of the key's accounts), newest first, with their audit status and message."""
    return templates.list_templates(account=account, status=status, limit=limit, offset=offset,
                                    accounts=access.visible_accounts(principal, account))
