"""Simulator configuration: the simulated Emay service numbers and the timing rules."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

SERVICES = ("voice", "join")
# accounts.toml provider name -> which family of Emay endpoints the service number belongs to
PROVIDER_SERVICE = {"emay_voice": "voice", "emay_voice_sms": "join"}
DEFAULT_BALANCE = Decimal("1000000000")


@dataclass
class EmayApp:
    """One simulated Emay service number (appId): its key, its endpoint family and its balance."""

    secret_key: str = field(repr=False)  # never shown in logs or reprs
    service: str  # "voice" (/voice/*) or "join" (/join/*)
    balance: Decimal = DEFAULT_BALANCE

    def __post_init__(self) -> None:
        if self.service not in SERVICES:
            raise ValueError(f"service must be one of {SERVICES}, not {self.service!r}")
        if not self.secret_key:
            raise ValueError("secret_key must not be empty")
        self.balance = Decimal(str(self.balance))


@dataclass
class SimConfig:
    """Everything the simulator needs: apps by appId, report delay, timestamp window, seed."""

    emay_apps: dict[str, EmayApp]
    report_delay_s: float = 0.5  # a report becomes available this long after acceptance
    timestamp_window_s: float = 60.0  # the document: within 1 minute of Beijing time
    seed: int = 0  # salts the per-mobile outcome hash

    @classmethod
    def from_accounts(cls, accounts: Mapping[str, Any], **kw: Any) -> SimConfig:
        """Build a config from parsed accounts: emay_voice -> voice, emay_voice_sms -> join, others ignored."""
        apps: dict[str, EmayApp] = {}
        for account in accounts.values():
            provider = _get(account, "provider")
            service = PROVIDER_SERVICE.get(provider)
            if service is None:
                continue
            secret = _get(account, "secret_key")
            if hasattr(secret, "get_secret_value"):
                secret = secret.get_secret_value()
            apps[str(_get(account, "app_id"))] = EmayApp(secret_key=str(secret), service=service)
        return cls(emay_apps=apps, **kw)


def _get(obj: Any, name: str) -> Any:
    """Read a field from an account object or a plain mapping."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)
