"""The signature header: `X-Msgrelay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.

With several secrets (a rotation under way) there is one `v1=` per secret, the first secret's first: a receiver
that holds any one of them verifies, whichever side is switched first. Pure functions: receivers can copy them.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

HEADER = "X-Msgrelay-Signature"
#: a receiver should refuse a signature older than this (replays); msgrelay signs every try afresh
DEFAULT_TOLERANCE_S = 300


def signature(secret: str, t: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `"<t>." + body` under `secret`."""
    return hmac.new(secret.encode("utf-8"), str(t).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: Sequence[str], *, t: int | None = None) -> str:
    """The header's value for `body`: `t=…,v1=…` with one v1 per secret, the first secret's first."""
    if not secrets:
        raise ValueError("no webhook secret: set MSGRELAY_WEBHOOK_SECRET")
    t = int(time.time()) if t is None else t
    return ",".join([f"t={t}", *(f"v1={signature(s, t, body)}" for s in secrets)])


def parse(header: str) -> tuple[int | None, list[str]]:
    """(t, every v1 signature) of a header value; t is None when absent or not a number."""
    t, found = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            t = int(value)
        elif key == "v1" and value:
            found.append(value)
    return t, found


def verify(header: str | None, body: bytes, secrets: Sequence[str], *, tolerance_s: float = DEFAULT_TOLERANCE_S,
           now: float | None = None) -> bool:
    """True when one of the header's v1 signatures matches one of `secrets` and `t` is within `tolerance_s`."""
    if not header:
        return False
    t, given = parse(header)
    if t is None or not given or abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = [signature(s, t, body) for s in secrets]
    return any(hmac.compare_digest(e, g) for e in expected for g in given)
