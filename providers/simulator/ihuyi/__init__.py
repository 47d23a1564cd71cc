"""The simulated ihuyi MMS (document 002): batchSend, balance, templateCreate, pushes and /_sim/ihuyi/*.

``routes``: the provider endpoints; ``checks``: signing and request checks; ``state``: credentials (IhuyiApp)
and ihuyi-only state; ``push``: receipt, reply (drawn, or injected by /_sim/reply) and audit pushes;
``control``: the /_sim/ihuyi/* routes.
"""
from __future__ import annotations

from providers.simulator.base import SimVendor
from providers.simulator.ihuyi.push import reply
from providers.simulator.ihuyi.routes import ihuyi_router
from providers.simulator.ihuyi.state import NAME, IhuyiApp, add_account

VENDOR = SimVendor(name=NAME, providers=("ihuyi_mms",), add_account=add_account, secret_attr="api_key",
                   router=ihuyi_router, reply=reply)

__all__ = ["VENDOR", "IhuyiApp", "ihuyi_router"]
