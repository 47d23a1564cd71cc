"""The audit log of operator actions (DESIGN §9 "API keys"): who paused, resumed, cancelled, changed a
suppression, retried a delivery or resumed an account, and when. Operators and viewers read it."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator

from api.access import Principal, reader
from api.inputs import Offset, _storable_text
from models import session_scope
from msgrelay import audit

router = APIRouter(tags=["audit"])


@router.get("/audit")
def listed(_principal: Annotated[Principal, Depends(reader)], limit: int = Query(100, ge=1, le=1000),
           offset: Offset = 0,
           action: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z.]+$",
                                               description="only this action, e.g. job.pause")] = None,
           key: Annotated[str | None, Query(max_length=64, description="only this key's actions"),
                          AfterValidator(_storable_text)] = None,
           ) -> list[dict]:
    """Audit rows newest first: `at`, `key` (the API key's name, `api-token`, `local` or `cli`), `action`
    (job.pause|resume|cancel, suppression.add|remove, delivery.retry, account.resume), `target` and `detail`."""
    with session_scope() as session:
        return audit.list_audit(session, limit=limit, offset=offset, action=action, key=key)
