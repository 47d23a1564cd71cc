"""Templates: POST /v1/accounts/{account}/templates, GET /v1/templates — to be built."""
from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["templates"])
