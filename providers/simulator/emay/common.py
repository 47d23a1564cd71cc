"""What every simulated Emay product shares: service numbers (appIds), signing and authentication.

Documents 001 (voice, voice-SMS) and 004 (international SMS) authenticate alike: appId, a Beijing timestamp
within the window, sign = md5(appId + secretKey + timestamp); balance calls sign md5(appId + secretKey).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from providers.simulator.base import BEIJING, DEFAULT_BALANCE, account_field, account_secret
from providers.simulator.config import SimConfig

NAME = "emay"
SERVICES = ("voice", "join", "ims")
# accounts.toml provider name -> which family of Emay endpoints the service number belongs to
PROVIDER_SERVICE = {"emay_voice": "voice", "emay_voice_sms": "join", "emay_ims": "ims"}
TIMESTAMP_RE = re.compile(r"\d{14}")


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


def emay_apps(config: SimConfig) -> dict[str, EmayApp]:
    """The configured Emay service numbers by appId."""
    return config.credentials_of(NAME)


def add_account(apps: dict[str, EmayApp], provider: str, account: Any) -> None:
    """Add one emay_* account's service number to `apps`."""
    apps[str(account_field(account, "app_id"))] = EmayApp(
        secret_key=account_secret(account, "secret_key"), service=PROVIDER_SERVICE[provider])


def md5_sign(*parts: str) -> str:
    """md5 of the concatenated parts, 32 lowercase hex digits."""
    return hashlib.md5("".join(parts).encode("utf-8")).hexdigest()


def timestamp_ok(timestamp: str, *, now: datetime, window_s: float) -> bool:
    """A 14-digit yyyyMMddHHmmss Beijing time within window_s of `now`."""
    if not TIMESTAMP_RE.fullmatch(timestamp):
        return False
    try:
        at = datetime.strptime(timestamp, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    except ValueError:
        return False
    return abs((now - at).total_seconds()) <= window_s


class Refused(Exception):
    """A request the provider answers with one of the document's error codes."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def require(ok: bool, code: str) -> None:
    """Refuse with `code` unless `ok`."""
    if not ok:
        raise Refused(code)


def check_auth(
    params: Mapping[str, str], apps: Mapping[str, EmayApp], *, balance_call: bool, now: datetime, window_s: float
) -> EmayApp:
    """appId, timestamp and sign, or Refused: ERROR_PARAMS, ERROR_APPID, ERROR_TIMESTAMP, ERROR_SIGN."""
    app_id, sign, timestamp = params.get("appId", ""), params.get("sign", ""), params.get("timestamp", "")
    require(bool(app_id and sign and (balance_call or timestamp)), "ERROR_PARAMS")
    app = apps.get(app_id)
    require(app is not None, "ERROR_APPID")
    assert app is not None
    if balance_call:
        expected = md5_sign(app_id, app.secret_key)
    else:
        require(timestamp_ok(timestamp, now=now, window_s=window_s), "ERROR_TIMESTAMP")
        expected = md5_sign(app_id, app.secret_key, timestamp)
    require(sign.lower() == expected, "ERROR_SIGN")
    return app
