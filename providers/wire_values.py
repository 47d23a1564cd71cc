"""Values as the Chinese HTTP providers write them: a Beijing wall-clock send time, a decimal balance figure.

Pure conversions shared by ``ihuyi_mms``, ``qyxs_sms`` and ``emay_common``; no I/O.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from providers.base import BEIJING
from providers.errors import TransientError

BEIJING_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def beijing_send_time(send_at: datetime | None, now: datetime) -> str | None:
    """`send_at` as Beijing "YYYY-MM-DD HH:MM:SS" while it is still ahead of `now`; None for now or the past."""
    if send_at is None or send_at <= now:
        return None
    return send_at.astimezone(BEIJING).strftime(BEIJING_TIME_FORMAT)


def decimal_amount(value: Any, *, name: str) -> Decimal:
    """A figure of an answer as a finite Decimal; a missing, boolean or non-numeric one is TransientError."""
    try:
        if isinstance(value, bool) or value is None:
            raise InvalidOperation
        amount = Decimal(str(value).strip())
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise TransientError("BAD_ANSWER", f"{name} is not a number: {value!r}") from None
    return amount
