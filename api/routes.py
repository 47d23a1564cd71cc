"""Routes across accounts (DESIGN §9): each route's accounts with their health, and resuming a paused account."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api import access
from api.access import Principal
from api.inputs import ACCOUNT_MAX_CHARS, answers
from msgrelay.accounts import get_accounts
from msgrelay.routes.view import resume_account, route_views

router = APIRouter(tags=["routes"])


@router.get("/routes")
def routes(principal: Annotated[Principal, Depends(access.current)]) -> list[dict]:
    """Every route (a key of some accounts: those whose accounts are all its own) with its mode and its accounts in
    order: weight, health (ok or paused), the pause's reason and since when, the last known balance and the rate
    limit."""
    return [r for r in route_views(get_accounts())
            if all(access.can_see(principal, a["name"]) for a in r["accounts"])]


@router.post("/accounts/{account}/resume", responses=answers(s404="no such account is configured"))
def resume(account: Annotated[str, Path(max_length=ACCOUNT_MAX_CHARS)],
           principal: Annotated[Principal, Depends(access.operator)]) -> dict:
    """Lift the account's pause (balance, credentials or client IP fixed): its routes send through it again.
    `resumed` is false when it was not paused."""
    access.check_accounts(principal, [account])
    return {"account": account, "resumed": resume_account(get_accounts(), account, by=principal.name)}
