"""Templates: POST /v1/accounts/{account}/templates (ihuyi templateCreate), GET /v1/templates."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from msgrelay import templates
from msgrelay.accounts import get_accounts
from providers.errors import AmbiguousError, ProviderError

router = APIRouter(tags=["templates"])


class TemplateIn(BaseModel):
    """POST /v1/accounts/{account}/templates: frames in ihuyi's own shape (or a text), and the MMS signature."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(description="the template's title (not shown in the MMS)")
    content: Any = Field(description='frames [[{"con_type", "ext_type", "data"}]], media base64; a text is one frame')
    sign_name: str = Field(description="the MMS signature in 【】, e.g. 【互亿无线】")
    purpose: str | None = Field(default=None, description="what the template is for (ihuyi's `purpose`)")


@router.post("/accounts/{account}/templates", status_code=201)
async def create_template(account: str, body: TemplateIn) -> dict:
    """Create the template at ihuyi and store it `pending` until the audit push; 422 for bad frames,
    502 when ihuyi refuses or cannot be reached."""
    try:
        return await run_in_threadpool(
            templates.create_template, get_accounts(), account, title=body.title, content=body.content,
            sign_name=body.sign_name, purpose=body.purpose)
    except ProviderError as exc:
        hint = " (ihuyi may have created it: list templates before retrying)" if isinstance(exc, AmbiguousError) else ""
        raise HTTPException(status_code=502, detail={"code": exc.code, "message": exc.message + hint}) from None


@router.get("/templates")
def list_templates(account: str | None = None,
                   status: Literal["pending", "approved", "rejected"] | None = None,
                   limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> list[dict]:
    """Templates, newest first, with their audit status and message."""
    return templates.list_templates(account=account, status=status, limit=limit, offset=offset)
