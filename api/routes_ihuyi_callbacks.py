"""ihuyi push receivers: /callbacks/ihuyi/{account}/{token}/receipt|mo|template — to be built."""
from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["callbacks"])
