"""Redis helpers shared by every worker: a global token bucket per account and per-account locks."""
from __future__ import annotations

from functools import lru_cache

import redis

from msgrelay.settings import get_settings

# KEYS[1] bucket; ARGV: rate (tokens/s), capacity. Returns 0 when a token was taken, else ms to wait.
# The clock is the Redis server's: clients' clocks differ, and an older `now` written after a newer one would
# refill the same interval twice.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait_ms = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', math.max(now, ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return wait_ms
"""


def get_redis(url: str | None = None) -> redis.Redis:
    """A pooled client for locks and rate limits (of the settings as they are now: reloaded settings that name
    another Redis get a client of it)."""
    return _client(url or get_settings().effective_redis_url())


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    """One pooled client per Redis URL per process."""
    return redis.Redis.from_url(url)


def take_token(account: str, rate_per_s: float, *, client: redis.Redis | None = None) -> float:
    """Take one request token of `account`'s bucket, shared by every worker; returns seconds to wait (0: go)."""
    client = client or get_redis()
    capacity = max(1.0, rate_per_s)  # at most one second's worth of burst
    wait_ms = client.eval(_TOKEN_BUCKET, 1, f"msgrelay:bucket:{account}", rate_per_s, capacity)
    return int(wait_ms) / 1000.0


def account_lock(account: str, purpose: str, *, timeout_s: float = 120.0, client: redis.Redis | None = None):
    """A non-blocking lock with an expiry, so a crashed poller never holds it forever."""
    client = client or get_redis()
    return client.lock(f"msgrelay:lock:{purpose}:{account}", timeout=timeout_s, blocking=False)
