"""The suppression list (DESIGN §9): mobiles not to send to, for one account or every account (`*`)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api import access
from api.access import Principal
from api.inputs import ACCOUNT_MAX_CHARS, Offset, StorableBody, answers
from msgrelay.accounts import get_accounts
from msgrelay.policy import suppressions
from models.policy import EVERY_ACCOUNT

router = APIRouter(tags=["suppressions"])
Scope = Annotated[str | None, Query(max_length=ACCOUNT_MAX_CHARS, description="an account name, or * (every account)")]
Operator = Annotated[Principal, Depends(access.operator)]


def _check_scope(principal: Principal, scope: str | None) -> None:
    """A key of some accounts changes suppressions of those accounts only: `*` reaches every account (403)."""
    if principal.accounts is not None and scope in (None, "", EVERY_ACCOUNT):
        raise access.forbid(principal, "scope '*' (every account): name one of its accounts as the scope")
    access.check_accounts(principal, [scope] if scope else [])


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
async def add(body: SuppressionIn, response: Response, principal: Operator) -> dict:
    """Suppress a mobile: later jobs of the scope's accounts reject it (SUPPRESSED) without sending."""
    _check_scope(principal, body.scope)
    row, new = await run_in_threadpool(suppressions.add, get_accounts(), body.mobile, scope=body.scope,
                                       reason=body.reason, source="api", by=principal.name)
    if not new:
        response.status_code = 200
    return row


@router.get("/suppressions")
def listed(principal: Annotated[Principal, Depends(access.reader)], scope: Scope = None,
           mobile: Annotated[str | None, Query(max_length=32)] = None,
           limit: int = Query(100, ge=1, le=1000), offset: Offset = 0) -> list[dict]:
    """Suppressions, newest first, optionally of one scope or one mobile (a key of some accounts: theirs and *)."""
    mine = None if principal.accounts is None else [EVERY_ACCOUNT, *sorted(principal.accounts)]
    return suppressions.listed(scope=scope, mobile=mobile, limit=limit, offset=offset, scopes=mine)


@router.delete("/suppressions/{mobile}", status_code=204, responses=answers(s404="not suppressed in that scope"))
def remove(mobile: Annotated[str, Path(max_length=32)], principal: Operator, scope: Scope = None) -> Response:
    """Lift a suppression (in scope `*` unless `scope` names an account)."""
    _check_scope(principal, scope)
    suppressions.remove(mobile, scope=scope, by=principal.name)
    return Response(status_code=204)
