"""The simulated Emay: voice and voice-SMS (document 001), international SMS (document 004), report pushes.

``common``: service numbers (EmayApp), signing and authentication shared by every product; ``voice``:
/voice/* and /join/*; ``ims``: /inter/*; ``push``: Emay's report pushes and their /_sim/push control routes.
One appId serves one product family, chosen by its accounts.toml provider (``common.PROVIDER_SERVICE``).
"""
from __future__ import annotations

from fastapi import APIRouter

from providers.simulator.base import SimVendor
from providers.simulator.emay.common import NAME, PROVIDER_SERVICE, EmayApp, add_account, md5_sign
from providers.simulator.emay.ims import ims_router
from providers.simulator.emay.push import encrypt_push, push_router
from providers.simulator.emay.voice import join_outcome, voice_outcome, voice_router
from providers.simulator.state import SimState


def emay_router(state: SimState) -> APIRouter:
    """Every Emay route: voice and voice-SMS, international SMS, and the push control routes."""
    router = APIRouter()
    for part in (voice_router, ims_router, push_router):
        router.include_router(part(state))
    return router


VENDOR = SimVendor(name=NAME, providers=tuple(PROVIDER_SERVICE), add_account=add_account, secret_attr="secret_key",
                   router=emay_router)

__all__ = ["VENDOR", "EmayApp", "emay_router", "encrypt_push", "join_outcome", "md5_sign", "voice_outcome"]
