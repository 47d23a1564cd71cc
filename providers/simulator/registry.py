"""The simulated vendors, in one table: a new vendor is its own module (or sub-package) plus one entry here.

Each vendor's ``VENDOR`` (a ``base.SimVendor``) says which accounts.toml providers it serves, how an account
becomes its credential, which credential attribute is the secret, and which routes it adds.
``config_from_accounts``, ``SimConfig.balances`` and ``create_app`` only ever loop over this table.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.simulator.base import SimVendor, account_field
from providers.simulator.config import SimConfig
from providers.simulator.emay import VENDOR as EMAY
from providers.simulator.ihuyi import VENDOR as IHUYI
from providers.simulator.qyxs import VENDOR as QYXS

VENDORS: tuple[SimVendor, ...] = (EMAY, QYXS, IHUYI)  # /_sim/secret looks a credential id up in this order


def _by_provider(vendors: tuple[SimVendor, ...]) -> dict[str, SimVendor]:
    """accounts.toml provider name -> its vendor; a provider or vendor name listed twice is a mistake."""
    names = [vendor.name for vendor in vendors]
    if len(set(names)) != len(names):
        raise ValueError(f"simulated vendor names must be unique: {names}")
    served: dict[str, SimVendor] = {}
    for vendor in vendors:
        for provider in vendor.providers:
            if provider in served:
                raise ValueError(f"provider {provider!r} is served by both {served[provider].name} and {vendor.name}")
            served[provider] = vendor
    return served


BY_PROVIDER = _by_provider(VENDORS)


def vendor_serving(provider: str) -> SimVendor | None:
    """The vendor serving this accounts.toml provider name; None when no vendor does."""
    return BY_PROVIDER.get(provider)


def config_from_accounts(accounts: Mapping[str, Any], **kw: Any) -> SimConfig:
    """A config serving parsed accounts (objects or plain mappings): every account a vendor serves."""
    credentials: dict[str, dict[str, Any]] = {}
    for account in accounts.values():
        provider = account_field(account, "provider")
        vendor = vendor_serving(provider)
        if vendor is not None:  # an account of a provider nobody simulates is left out
            vendor.add_account(credentials.setdefault(vendor.name, {}), provider, account)
    return SimConfig(credentials=credentials, **kw)
