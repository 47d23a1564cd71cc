"""Account-wide routes: balances and inbound messages (templates and content checks join per provider)."""
from __future__ import annotations

from fastapi import APIRouter, Query

from msgrelay.balances import latest_balances
from msgrelay.inbound import list_inbound

router = APIRouter(tags=["accounts"])


@router.get("/balances")
def balances() -> list[dict]:
    """The newest balance snapshot of every account."""
    return latest_balances()


@router.get("/inbound")
def inbound(account: str | None = None, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> list[dict]:
    """Inbound messages (MO) of every provider, newest first."""
    return list_inbound(account=account, limit=limit, offset=offset)
