"""Verification calls have the right of way: throughput work holds off while one is on its way to the provider.

Niceness orders the workers' own processes, but not what they ask of PostgreSQL, Redis and the provider, which
serve every caller at one priority; on a busy machine a verification call then waits behind the bulk job's
statements and requests at every step. So the API counts a call as in flight from its write until the otp worker
sends its request (not until the provider answers: that round trip is spent away from this machine), and
bulk sends, report polls, webhook deliveries and big submits hold off before their next step (a database
transaction or a provider request) while any call is, for at most `right_of_way_ms` each time.

The calls in flight are a sorted set in Redis, each member scored with its deadline by Redis's own clock, so a call
whose process died stops counting by itself. The API names the member, and the otp task learns it from a header of
its message (no second round trip to Redis on the call's way); the call's count and its end go to Redis beside the
write and the request, never before them. Redis failing here never fails a call or a step: it just stops holding
anything off.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from collections.abc import Callable
from functools import lru_cache

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from msgrelay import metrics
from msgrelay.settings import get_settings

log = logging.getLogger(__name__)

KEY = "msgrelay:right-of-way"
#: the header of a verification call's send_chunk message that names its member (ids only: never a secret)
HEADER = "msgrelay_right_of_way"
#: how long a call counts at most (an otp worker that is down or backed up must not hold the bulk job off for long)
CALL_TTL_MS = 2000
#: how often a waiting process asks again (all its threads share one answer)
RECHECK_S = 0.005
#: the most one question to Redis may take (a Redis that does not answer holds nothing off)
TIMEOUT_S = 0.25

# KEYS[1] the set; ARGV: ttl ms, member
_ENTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1])) end
return 1
"""
# KEYS[1] the set. Returns how many calls are in flight now (the ones past their deadline are dropped).
_IN_FLIGHT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


def get_client() -> redis.Redis:
    """The right of way's own Redis client: no retries and short timeouts, since it is advice, never worth a
    wait of its own (the shared client retries ten times with backoff: seconds on a verification call)."""
    return _client(get_settings().effective_redis_url())


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    """One such client per Redis URL per process."""
    return redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_timeout=TIMEOUT_S,
                                socket_connect_timeout=TIMEOUT_S)


def call_started(member: str, *, ttl_ms: int | None = None, client: redis.Redis | None = None) -> None:
    """Count a verification call as in flight under `member`, `ttl_ms` at most (default CALL_TTL_MS)."""
    try:
        (client or get_client()).eval(_ENTER, 1, KEY, ttl_ms or CALL_TTL_MS, member)
    except redis.RedisError as exc:  # the call goes on; throughput work just does not hold off for it
        log.warning("right of way: could not count a verification call in flight (%s)", exc)


def call_ended(member: str, *, client: redis.Redis | None = None) -> None:
    """The call under `member` has reached the provider (or failed): it no longer holds anything off."""
    try:
        (client or get_client()).zrem(KEY, member)
    except redis.RedisError as exc:  # its deadline ends it
        log.warning("right of way: could not end a verification call (%s)", exc)


class _Gate:
    """One process's view of whether a call is in flight: a "yes" is shared by its threads for RECHECK_S (the
    waiting ones ask Redis once between them), a "no" is never reused (a step never goes on a stale answer)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked_at = float("-inf")
        self._busy = False

    def busy(self, client: redis.Redis | None) -> bool:
        """Whether a verification call is in flight."""
        with self._lock:
            if not self._busy or time.monotonic() - self._asked_at >= RECHECK_S:
                self._busy = bool((client or get_client()).eval(_IN_FLIGHT, 1, KEY))
                self._asked_at = time.monotonic()
            return self._busy


_gate = _Gate()


def give_way(max_wait_s: float, *, client: redis.Redis | None = None) -> float:
    """Wait while a verification call is in flight, at most `max_wait_s`; the seconds waited (0 when none is)."""
    if max_wait_s <= 0:
        return 0.0
    started = time.monotonic()
    deadline = started + max_wait_s
    try:
        while _gate.busy(client):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(RECHECK_S, left))
    except redis.RedisError:  # Redis is down: nothing holds throughput work off (the step finds out on its own)
        pass
    return time.monotonic() - started


def no_wait() -> float:
    """The give_way of a verification call's own steps: they never wait."""
    return 0.0


def waiter(max_wait_s: float, work: str) -> Callable[[], float]:
    """The give_way of a kind of throughput work (send, poll, webhook, upload): each step waits for the calls in
    flight, `max_wait_s` at most, and the time it waited is counted (`msgrelay_right_of_way_wait_seconds_total`)."""
    counter = metrics.RIGHT_OF_WAY_WAIT.labels(work)

    def wait() -> float:
        waited = give_way(max_wait_s)
        if waited >= RECHECK_S:  # a step that only asked is not counted as having waited
            counter.inc(waited)
        return waited
    return wait


@dataclass(frozen=True)
class Way:
    """A send's part in the right of way: `give()` before each of its transactions (throughput work waits for the
    calls in flight), `clear()` as its request leaves for the provider (a verification call holds nothing off
    while the provider answers: a round trip of 50 to 300 ms away is no reason to hold this machine's work)."""

    give: Callable[[], object] = no_wait
    clear: Callable[[], object] = no_wait


def way_of_send(call: str | None, *, verification: bool, max_wait_s: float) -> Way:
    """The Way of one send of a chunk: a verification call's clears its call (`call`, the member its message
    names; none when the sweeper published it), any other gives way."""
    if not verification:
        return Way(give=waiter(max_wait_s, "send"))
    if not call:
        return Way()
    ended = threading.Event()

    def clear() -> None:  # beside the request, not before it: the call is not kept waiting for Redis
        if not ended.is_set():
            ended.set()
            _beside(os.getpid()).submit(call_ended, call)
    return Way(clear=clear)


class Call:
    """One verification call, counted from the API's write until the otp worker sends its request: the API hands its
    member over with the chunk's message (the otp task ends it), or closes it.

    Counting it is one round trip to Redis, made beside the write (on a thread of its own) rather than before it:
    on a busy machine a round trip waits for Redis and then for the API again. It is done before the member is
    handed over or closed, so a call never ends before it began counting."""

    def __init__(self, counted: bool = True) -> None:
        self.member: str | None = f"call:{uuid.uuid4().hex}" if counted else None
        self._counting: Future | None = _beside(os.getpid()).submit(call_started, self.member) if self.member else None

    def _counted(self) -> None:
        """Wait until the call is counted (call_started never raises: a Redis that fails is logged)."""
        if self._counting is not None:
            self._counting.result()
            self._counting = None

    def hand_over(self) -> str | None:
        """The call's chunk is about to be published: its member, for the message (the otp task ends it)."""
        self._counted()
        member, self.member = self.member, None
        return member

    def close(self) -> None:
        """Not handed over (refused, held, a repeat of an earlier job): it stops counting now."""
        self._counted()
        if self.member:
            call_ended(self.member)
            self.member = None


@lru_cache(maxsize=1)
def _beside(pid: int) -> ThreadPoolExecutor:
    """The thread that tells Redis of a call beside its own steps (its count beside the API's write, its end beside
    the otp worker's request): one per process (`pid`: a forked child has none of its parent's threads, so it
    starts its own)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="right-of-way")
