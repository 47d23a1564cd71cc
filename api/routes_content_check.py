"""POST /v1/accounts/{account}/check-content (企业信使 keyword check) — to be built."""
from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["accounts"])
