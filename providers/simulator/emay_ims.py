"""Simulator routes for emay_ims (to be built)."""
from __future__ import annotations

from fastapi import APIRouter

from providers.simulator.state import SimState


def ims_router(state: SimState) -> APIRouter:
    """The provider's endpoints, served from the shared state."""
    return APIRouter()
