"""Recipients each account handed to its provider in the last seconds, counted in Redis per second (one
pipelined write per accepted request), so the console shows a send rate from every worker without a scan."""
from __future__ import annotations

import time
from collections.abc import Iterable

import redis

from msgrelay.limits import get_redis

#: a second's count is kept this long
KEEP_S = 120
#: the rate is the mean over this many whole seconds before the current one
WINDOW_S = 10


def _key(account: str, second: int) -> str:
    """The counter of one account and one second."""
    return f"msgrelay:sent:{account}:{second}"


def count(account: str, n: int, *, client: redis.Redis | None = None, now: float | None = None) -> None:
    """Add `n` recipients accepted now by `account`'s provider."""
    if n <= 0:
        return
    key = _key(account, int(now if now is not None else time.time()))
    pipe = (client or get_redis()).pipeline(transaction=False)
    pipe.incrby(key, n)
    pipe.expire(key, KEEP_S)
    pipe.execute()


def rates(accounts: Iterable[str], *, client: redis.Redis | None = None,
          now: float | None = None) -> dict[str, dict[str, float]]:
    """Per account: `per_s` (mean over the last WINDOW_S whole seconds) and `last_minute` (recipients in the
    last 60 whole seconds)."""
    names = list(accounts)
    if not names:
        return {}
    second = int(now if now is not None else time.time())
    keys = [_key(a, s) for a in names for s in range(second - 60, second)]
    values = [int(v or 0) for v in (client or get_redis()).mget(keys)]
    out = {}
    for i, account in enumerate(names):
        minute = values[i * 60:(i + 1) * 60]
        out[account] = {"per_s": sum(minute[-WINDOW_S:]) / WINDOW_S, "last_minute": float(sum(minute))}
    return out
