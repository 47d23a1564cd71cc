"""Operator routes for producer webhooks: list deliveries, retry one (DESIGN §9)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.access import Principal, operator, own_jobs, reader
from api.inputs import Offset, RowId, answers
from models import session_scope
from models.statuses import DeliveryStatus
from msgrelay import operations as actions
from msgrelay.webhooks import operations

router = APIRouter(tags=["webhook deliveries"])


@router.get("/webhooks/deliveries")
def deliveries(principal: Annotated[Principal, Depends(reader)], status: DeliveryStatus | None = None,
               limit: int = Query(100, ge=1, le=1000), offset: Offset = 0) -> list[dict]:
    """Webhook deliveries, newest first: receiver URL, status, events, attempts, last HTTP status and error (a
    key of some accounts: deliveries to the receivers of its jobs only)."""
    with session_scope() as session:
        return operations.list_deliveries(session, status=status, limit=limit, offset=offset,
                                          jobs=own_jobs(principal))


@router.post("/webhooks/deliveries/{delivery_id}/retry",
             responses=answers(s404="no such delivery", s422="the delivery is neither dead nor failing"))
def retry(delivery_id: RowId, principal: Annotated[Principal, Depends(operator)]) -> dict:
    """Send a dead (or failing) delivery again now: the same events with the same ids, signed afresh, with a
    fresh retry schedule."""
    return actions.retry_delivery(delivery_id, by=principal.name, jobs=own_jobs(principal))
