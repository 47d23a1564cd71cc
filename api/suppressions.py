"""The suppression list (DESIGN §9): mobiles not to send to, for one account or every account (`*`)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.inputs import ACCOUNT_MAX_CHARS, Offset, StorableBody, answers
from msgrelay.accounts import get_accounts
from msgrelay.policy import suppressions

router = APIRouter(tags=["suppressions"])
Scope = Annotated[str | None, Query(max_length=ACCOUNT_MAX_CHARS, description="an account name, or * (every account)")]


class SuppressionIn(StorableBody):
    """POST /v1/suppressions."""

    model_config = ConfigDict(extra="forbid")
    mobile: str = Field(max_length=32, description="the phone number, in any usual form (+86…, 0086…, 138…)")
    scope: str | None = Field(default=None, max_length=ACCOUNT_MAX_CHARS,
                              description="an account name, or * (every account; the default)")
    reason: str | None = Field(default=None, max_length=255)


@router.post("/suppressions", status_code=201, responses=answers(
    s200="the mobile was suppressed in this scope already (the first entry is kept)",
    s422="a mobile that is no phone number, or a scope that is neither * nor an account"))
async def add(body: SuppressionIn, response: Response) -> dict:
    """Suppress a mobile: later jobs of the scope's accounts reject it (SUPPRESSED) without sending."""
    row, new = await run_in_threadpool(suppressions.add, get_accounts(), body.mobile, scope=body.scope,
                                       reason=body.reason, source="api")
    if not new:
        response.status_code = 200
    return row


@router.get("/suppressions")
def listed(scope: Scope = None, mobile: Annotated[str | None, Query(max_length=32)] = None,
           limit: int = Query(100, ge=1, le=1000), offset: Offset = 0) -> list[dict]:
    """Suppressions, newest first, optionally of one scope or one mobile."""
    return suppressions.listed(scope=scope, mobile=mobile, limit=limit, offset=offset)


@router.delete("/suppressions/{mobile}", status_code=204, responses=answers(s404="not suppressed in that scope"))
def remove(mobile: Annotated[str, Path(max_length=32)], scope: Scope = None) -> Response:
    """Lift a suppression (in scope `*` unless `scope` names an account)."""
    suppressions.remove(mobile, scope=scope)
    return Response(status_code=204)
