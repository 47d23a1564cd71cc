"""Routes across accounts (DESIGN §9): each route's accounts with their health, and resuming a paused account."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.inputs import ACCOUNT_MAX_CHARS, answers
from msgrelay.accounts import get_accounts
from msgrelay.routes.view import resume_account, route_views

router = APIRouter(tags=["routes"])


@router.get("/routes")
def routes() -> list[dict]:
    """Every route with its mode and its accounts in order: weight, health (ok or paused), the pause's reason and
    since when, the last known balance and the rate limit."""
    return route_views(get_accounts())


@router.post("/accounts/{account}/resume", responses=answers(s404="no such account is configured"))
def resume(account: Annotated[str, Path(max_length=ACCOUNT_MAX_CHARS)]) -> dict:
    """Lift the account's pause (balance, credentials or client IP fixed): its routes send through it again.
    `resumed` is false when it was not paused."""
    return {"account": account, "resumed": resume_account(get_accounts(), account)}
