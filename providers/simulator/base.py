"""What a simulated vendor declares (``SimVendor``) and the helpers every vendor module builds on.

A vendor is one module or sub-package exposing ``VENDOR = SimVendor(...)``, listed once in ``registry``;
nothing else in the simulator names a vendor.  To add one, copy ``qyxs.py`` (a single module) or ``ihuyi/``
(a sub-package) and add its VENDOR to ``registry.VENDORS``.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from fastapi import APIRouter

    from providers.simulator.state import RequestRecord, SimState

DEFAULT_BALANCE = Decimal("1000000000")
BEIJING = timezone(timedelta(hours=8))  # every document's clock: Beijing time, whatever the server's zone


# (the app's latest request to that mobile or None, mobile, content, Unix seconds received) -> one reply injected
# by /_sim/reply, in the shape the vendor's routes hand it out (they drain ``SimState.take_replies``)
ReplyMaker = Callable[["RequestRecord | None", str, str, float], dict[str, str]]


@dataclass(frozen=True)
class SimVendor:
    """One simulated vendor: the accounts.toml providers it serves, its credentials and its routes."""

    name: str  # keys its credentials in SimConfig.credentials
    providers: tuple[str, ...]  # the accounts.toml provider names whose accounts it serves
    # (its credentials by id, the account's provider name, one parsed account): add that account's credential
    add_account: Callable[[dict[str, Any], str, Any], None]
    secret_attr: str  # the credential attribute /_sim/secret changes and /_sim/reset restores
    router: Callable[[SimState], APIRouter]  # its provider routes and its own control routes
    reply: ReplyMaker | None = None  # how a reply injected by /_sim/reply looks; None: it takes no replies


async def json_off_the_loop(build: Callable[[], Any]) -> Any:
    """A JSON answer built and encoded in a worker thread. A page of 1,000 reports or the answer to a 500-recipient
    send takes the event loop tens of milliseconds; on the loop, every other request (a one-recipient verification
    call's) would wait behind it before it is even read. Off the loop they interleave, as at a real provider."""
    from fastapi.responses import JSONResponse

    return await asyncio.to_thread(lambda: JSONResponse(build()))


def account_field(account: Any, name: str) -> Any:
    """A field of a parsed account: an object's attribute or a plain mapping's key (None when absent)."""
    if isinstance(account, Mapping):
        return account.get(name)
    return getattr(account, name, None)


def account_secret(account: Any, name: str) -> str:
    """A secret field of a parsed account as text, unwrapped when it is a pydantic SecretStr."""
    value = account_field(account, name)
    return str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)


def parse_params(query: Mapping[str, str], body: bytes, content_type: str) -> dict[str, str] | None:
    """Query-string then form-body parameters (UTF-8); None when the body is not valid UTF-8."""
    params = dict(query)
    if body and (not content_type or content_type.startswith("application/x-www-form-urlencoded")):
        try:
            text = body.decode("utf-8")
            params.update(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict"))
        except (UnicodeDecodeError, ValueError):
            return None
    return params
