"""Simulator configuration: the simulated Emay service numbers and the timing rules."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

SERVICES = ("voice", "join", "ims")
# accounts.toml provider name -> which family of Emay endpoints the service number belongs to
PROVIDER_SERVICE = {"emay_voice": "voice", "emay_voice_sms": "join", "emay_ims": "ims"}
DEFAULT_BALANCE = Decimal("1000000000")


@dataclass
class EmayApp:
    """One simulated Emay service number (appId): its key, its endpoint family and its balance."""

    secret_key: str = field(repr=False)  # never shown in logs or reprs
    service: str  # "voice" (/voice/*), "join" (/join/*) or "ims" (/inter/*)
    balance: Decimal = DEFAULT_BALANCE

    def __post_init__(self) -> None:
        if self.service not in SERVICES:
            raise ValueError(f"service must be one of {SERVICES}, not {self.service!r}")
        if not self.secret_key:
            raise ValueError("secret_key must not be empty")
        self.balance = Decimal(str(self.balance))


@dataclass
class QyxsUser:
    """One simulated 企业信使 user: userid (the key of SimConfig.qyxs_users), account name, password, balance."""

    account: str
    password: str = field(repr=False)
    balance: Decimal = DEFAULT_BALANCE

    def __post_init__(self) -> None:
        self.balance = Decimal(str(self.balance))


@dataclass
class IhuyiApp:
    """One simulated ihuyi MMS api_id: its key, its products (id -> name) and its balance."""

    api_key: str = field(repr=False)
    products: dict[int, str] = field(default_factory=lambda: {1001: "彩信通知"})
    balance: Decimal = DEFAULT_BALANCE

    def __post_init__(self) -> None:
        self.balance = Decimal(str(self.balance))


@dataclass
class SimConfig:
    """Everything the simulator needs: credentials per provider, report delay, timestamp window, seed.

    Every credential id (Emay appId, qyxs userid, ihuyi api_id) keys one balance in the shared state.
    """

    emay_apps: dict[str, EmayApp]
    report_delay_s: float = 0.5  # a report becomes available this long after acceptance
    timestamp_window_s: float = 60.0  # the document: within 1 minute of Beijing time
    seed: int = 0  # salts the per-mobile outcome hash
    qyxs_users: dict[str, QyxsUser] = field(default_factory=dict)
    ihuyi_apps: dict[str, IhuyiApp] = field(default_factory=dict)

    def balances(self) -> dict[str, Decimal]:
        """The configured balance of every credential id."""
        return {key: cred.balance for creds in (self.emay_apps, self.qyxs_users, self.ihuyi_apps)
                for key, cred in creds.items()}

    @classmethod
    def from_accounts(cls, accounts: Mapping[str, Any], **kw: Any) -> SimConfig:
        """Build a config from parsed accounts: every provider's credentials the simulator serves."""
        apps: dict[str, EmayApp] = {}
        users: dict[str, QyxsUser] = {}
        ihuyi: dict[str, IhuyiApp] = {}
        for account in accounts.values():
            provider = _get(account, "provider")
            service = PROVIDER_SERVICE.get(provider)
            if service is not None:
                apps[str(_get(account, "app_id"))] = EmayApp(secret_key=_secret(account, "secret_key"), service=service)
            elif provider == "qyxs_sms":
                users[str(_get(account, "userid"))] = QyxsUser(account=str(_get(account, "account")),
                                                              password=_secret(account, "password"))
            elif provider == "ihuyi_mms":
                product = int(_get(account, "product_id"))
                app = ihuyi.setdefault(str(_get(account, "api_id")), IhuyiApp(api_key=_secret(account, "api_key")))
                app.products.setdefault(product, f"产品{product}")
        return cls(emay_apps=apps, qyxs_users=users, ihuyi_apps=ihuyi, **kw)


def _secret(obj: Any, name: str) -> str:
    value = _get(obj, name)
    return str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)


def _get(obj: Any, name: str) -> Any:
    """Read a field from an account object or a plain mapping."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)
