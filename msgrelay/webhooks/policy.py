"""The retry schedule of a delivery: exponential backoff with jitter, for at least the horizon, then dead."""
from __future__ import annotations

import random
from datetime import datetime, timedelta

from msgrelay.settings import Settings


def next_wait_s(tries: int, settings: Settings, *, rand: random.Random | None = None) -> float:
    """Seconds to wait after the `tries`-th failed try: base · 2^(tries-1), capped, times a jitter in [0.5, 1]
    (many receivers' deliveries, failed together, do not come back together)."""
    raw = min(settings.webhook_retry_max_s, settings.webhook_retry_base_s * 2 ** max(0, min(tries - 1, 30)))
    return raw * (0.5 + 0.5 * (rand or random).random())


def is_dead(first_attempt_at: datetime, now: datetime, settings: Settings) -> bool:
    """Whether a delivery failing since `first_attempt_at` has been retried long enough."""
    return now - first_attempt_at >= timedelta(seconds=settings.webhook_retry_horizon_s)
