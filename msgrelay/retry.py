"""The whole retry policy of a chunk send: what each error family leads to, how long to wait, how many tries.

Tries are counted in the database (`Chunk.attempts`, raised by every claim), never in the task message, so a
chunk the sweeper re-enqueues keeps its count. Every wait stays well under the broker's visibility timeout
(DESIGN §7.2): a countdown longer than it would make Redis deliver the task again and again.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from msgrelay.settings import Settings
from providers.errors import (
    AccountError, AmbiguousError, PermanentError, ProviderError, RecipientRejected, TransientError,
)

#: no wait exceeds this share of the visibility timeout
VISIBILITY_SHARE = 4
#: a rate-limit wait is at least this long (the bucket refills continuously; a shorter wait just spins)
MIN_WAIT_S = 0.05
#: a request id is not reused this close to the end of the provider's de-duplication window (clock skew, queues)
REQUEST_ID_MARGIN_S = 600.0


class Action(StrEnum):
    """What the flow does with a chunk after an error."""

    PAUSE = "pause"  # the account cannot send: pause the job, keep the chunk pending for resume
    UNKNOWN = "unknown"  # the provider may have it: never resend, reports settle it
    SPLIT = "split"  # a refused number: halve the chunk to isolate it
    REJECT = "reject"  # the request itself is wrong: its messages are rejected with the code
    RETRY = "retry"  # not accepted: try again after `countdown`
    FAIL = "fail"  # not accepted and out of tries: its messages fail with the code


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one error: an action and, to retry, the wait."""

    action: Action
    countdown_s: float = 0.0


def wait_cap_s(settings: Settings) -> float:
    """The longest any wait may be: the configured maximum, never above a share of the visibility timeout."""
    return min(settings.retry_backoff_max_s, settings.visibility_timeout_s / VISIBILITY_SHARE)


def backoff_s(failed_tries: int, settings: Settings) -> float:
    """Exponential backoff with "equal jitter" after `failed_tries` failures: half the ceiling plus a random
    half, so retries of many chunks spread out but none comes back too soon."""
    ceiling = min(wait_cap_s(settings), settings.retry_backoff_base_s * (2 ** failed_tries))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def rate_limit_wait_s(wait_s: float, settings: Settings) -> float:
    """A rate limiter's wait, bounded like every countdown (a wait does not count as a try)."""
    return min(max(wait_s, MIN_WAIT_S), wait_cap_s(settings))


def decide(exc: ProviderError, *, attempts: int, batch_size: int, idempotent_request_id: bool,
           settings: Settings, ambiguous_before: bool = False) -> Decision:
    """What to do after `exc` on a chunk tried `attempts` times (this try included) holding `batch_size`;
    `ambiguous_before`: an earlier try may have been accepted, so running out of tries leaves it unknown."""
    decision = _decide(exc, attempts=attempts, batch_size=batch_size, idempotent_request_id=idempotent_request_id,
                       settings=settings)
    if decision.action in (Action.FAIL, Action.REJECT, Action.SPLIT) and (
            ambiguous_before or isinstance(exc, AmbiguousError)):
        return Decision(Action.UNKNOWN)  # the provider may have it: neither failed nor resent in halves
    return decision


def _decide(exc: ProviderError, *, attempts: int, batch_size: int, idempotent_request_id: bool,
            settings: Settings) -> Decision:
    """The decision for `exc` alone, ignoring earlier tries."""
    if isinstance(exc, AmbiguousError) and idempotent_request_id:
        # the provider drops a repeated request id, so resending the very same request cannot double-send
        exc = TransientError(exc.code, exc.message)
    if isinstance(exc, AccountError):
        return Decision(Action.PAUSE)
    if isinstance(exc, AmbiguousError):
        return Decision(Action.UNKNOWN)
    if isinstance(exc, RecipientRejected) and batch_size > 1:
        return Decision(Action.SPLIT)
    if isinstance(exc, PermanentError):
        return Decision(Action.REJECT)
    if isinstance(exc, TransientError) and attempts <= settings.retry_max:
        return Decision(Action.RETRY, backoff_s(attempts - 1, settings))
    return Decision(Action.FAIL)


def request_id_reusable(first_used: datetime | None, now: datetime, window_s: float | None) -> bool:
    """Whether a request id first used at `first_used` is still inside the provider's de-duplication window,
    with a margin (no window: the provider keeps no ids, so reusing one is moot and allowed)."""
    if first_used is None or window_s is None:
        return True
    return now - first_used < timedelta(seconds=window_s - REQUEST_ID_MARGIN_S)


def split(lo: int, hi: int) -> list[tuple[int, int]]:
    """The halves of the range [lo, hi) of a chunk refused for a bad number, so the bad one ends up alone."""
    mid = (lo + hi) // 2
    return [(a, b) for a, b in ((lo, mid), (mid, hi)) if b > a]
