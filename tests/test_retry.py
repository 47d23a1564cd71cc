"""The retry policy (msgrelay.retry) as a table: each error family, with and without tries left."""
from __future__ import annotations

import pytest

from datetime import datetime, timedelta, timezone

from msgrelay.retry import Action, decide, rate_limit_wait_s, request_id_reusable, split, wait_cap_s
from msgrelay.settings import Settings
from providers.errors import (
    AmbiguousError, PermanentError, RateLimited, RecipientRejected, TransientError, balance_error, credentials_error,
)

S = Settings(retry_max=3, retry_backoff_base_s=1, retry_backoff_max_s=60, visibility_timeout_s=100)

CASES = [
    # error, attempts (this try included), batch size, provider dedups request ids, expected action
    (credentials_error("ERROR_SIGN", ""), 1, 500, False, Action.PAUSE),
    (balance_error("ERROR_NEEDMORE_BALANCE", ""), 9, 500, False, Action.PAUSE),
    (AmbiguousError("READ_TIMEOUT", ""), 1, 500, False, Action.UNKNOWN),
    (AmbiguousError("READ_TIMEOUT", ""), 1, 500, True, Action.RETRY),  # same request id: safe to resend
    (AmbiguousError("READ_TIMEOUT", ""), 4, 500, True, Action.UNKNOWN),  # out of tries, may be accepted
    (RecipientRejected("ERROR_MOBILE_ERROR", ""), 1, 500, False, Action.SPLIT),
    (RecipientRejected("ERROR_MOBILE_ERROR", ""), 1, 1, False, Action.REJECT),  # alone: it is the bad one
    (PermanentError("ERROR_PARAMS", ""), 1, 500, False, Action.REJECT),
    (TransientError("HTTP_503", ""), 1, 500, False, Action.RETRY),
    (RateLimited("ERROR_OVER_SPEED", ""), 3, 500, False, Action.RETRY),
    (TransientError("HTTP_503", ""), 4, 500, False, Action.FAIL),  # retry_max=3 retries after the first try
]


#: after an earlier ambiguous try (the provider may have the chunk), nothing ends it but `unknown` or a retry
AFTER_AMBIGUOUS = [
    (TransientError("HTTP_503", ""), 2, 500, True, Action.RETRY),
    (TransientError("HTTP_503", ""), 4, 500, True, Action.UNKNOWN),  # out of tries: not `failed`
    (PermanentError("ERROR_PARAMS", ""), 2, 500, True, Action.UNKNOWN),  # not `rejected`
    (RecipientRejected("ERROR_PHONE", ""), 2, 500, True, Action.UNKNOWN),  # no halves with new request ids
    (balance_error("ERROR_BALANCE", ""), 2, 500, True, Action.PAUSE),
]


@pytest.mark.parametrize(("exc", "attempts", "size", "dedup", "action"), AFTER_AMBIGUOUS)
def test_after_an_ambiguous_try_a_chunk_is_never_failed_nor_split(exc, attempts, size, dedup, action):
    decision = decide(exc, attempts=attempts, batch_size=size, idempotent_request_id=dedup, settings=S,
                      ambiguous_before=True)
    assert decision.action is action


@pytest.mark.parametrize(("first_used_s_ago", "window", "reusable"), [
    (None, 7200, True), (60, 7200, True), (6599, 7200, True), (6601, 7200, False), (10**6, None, True)])
def test_a_request_id_is_reused_only_well_inside_the_providers_window(first_used_s_ago, window, reusable):
    now = datetime(2026, 11, 30, tzinfo=timezone.utc)
    first = None if first_used_s_ago is None else now - timedelta(seconds=first_used_s_ago)
    assert request_id_reusable(first, now, window) is reusable


@pytest.mark.parametrize(("exc", "attempts", "size", "dedup", "action"), CASES)
def test_each_family_leads_to_its_action(exc, attempts, size, dedup, action):
    decision = decide(exc, attempts=attempts, batch_size=size, idempotent_request_id=dedup, settings=S)
    assert decision.action is action
    if action is Action.RETRY:
        assert 0 < decision.countdown_s <= wait_cap_s(S)
    else:
        assert decision.countdown_s == 0


def test_retries_back_off_from_the_count_in_the_database():
    waits = [decide(TransientError("X"), attempts=n, batch_size=2, idempotent_request_id=False,
                    settings=Settings(retry_max=50, retry_backoff_base_s=1, retry_backoff_max_s=1000,
                                      visibility_timeout_s=10_000)).countdown_s for n in (1, 5, 9)]
    assert waits[0] <= 1 < 8 <= waits[1] <= 16 < 128 <= waits[2] <= 256


def test_every_wait_stays_under_a_quarter_of_the_visibility_timeout():
    assert wait_cap_s(S) == 25
    assert rate_limit_wait_s(10_000, S) == 25
    assert rate_limit_wait_s(0, S) > 0


@pytest.mark.parametrize(("lo", "hi", "halves"), [(0, 500, [(0, 250), (250, 500)]), (7, 8, [(7, 8)]),
                                                  (10, 13, [(10, 11), (11, 13)])])
def test_split_halves_cover_the_chunk_exactly(lo, hi, halves):
    assert split(lo, hi) == halves
