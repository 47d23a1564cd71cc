"""The one error hierarchy of msgrelay.

    ProviderError              something a provider (or the road to it) answered
    ├── TransientError         not accepted, safe to retry with backoff (connect error, 5xx, ERROR_TIMESTAMP)
    │   └── RateLimited        429 / ERROR_OVER_SPEED: retry later, not the request's fault
    ├── PermanentError         the request itself is wrong: retrying cannot help (bad content, parameters)
    │   └── RecipientRejected  one or more recipients refused (bad number): isolate and reject them
    ├── AccountError           the account cannot send (credentials, ip, balance): pause the job
    └── AmbiguousError         the request may or may not have been accepted (timeout after sending)

    ConfigError                a bad settings or accounts file: stands apart, never swallowed
    InvalidInput               a producer's bad input, naming the field and the rule (API answers 422)
    └── NotFound               the thing named does not exist (API answers 404)

Foreign exceptions (requests, json) are translated into these at exactly one boundary:
``providers.http.http_send`` and the provider parsers.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

from models.statuses import PauseReason


class ProviderError(Exception):
    """A provider answered with an error, or could not be reached."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class TransientError(ProviderError):
    """Not accepted; safe to retry later."""


class RateLimited(TransientError):
    """The provider asked us to slow down."""


class PermanentError(ProviderError):
    """The request is wrong; retrying the same request cannot succeed."""


class RecipientRejected(PermanentError):
    """One or more recipients were refused; the rest of the request may be fine."""


class AccountError(ProviderError):
    """The account cannot send until an operator acts: `reason` is 'credentials' or 'balance'."""

    def __init__(self, code: str, message: str = "", *, reason: str = PauseReason.CREDENTIALS) -> None:
        super().__init__(code, message)
        self.reason = reason


class AmbiguousError(ProviderError):
    """The request may have been accepted: never resend blindly."""


#: builds the error of one answer code: `factory(code, message)`
ErrorFactory = Callable[[str, str], ProviderError]
#: the account's credentials, client IP or product are refused: an operator must fix the account
credentials_error: ErrorFactory = partial(AccountError, reason=PauseReason.CREDENTIALS)
#: the account has run out of balance
balance_error: ErrorFactory = partial(AccountError, reason=PauseReason.BALANCE)


def unreadable(code: str, message: str, *, sending: bool) -> ProviderError:
    """An answer we cannot read: on a send the provider may have accepted it (ambiguous); on a query nothing
    was changed, so asking again is safe (transient)."""
    return (AmbiguousError if sending else TransientError)(code, message)


class ConfigError(Exception):
    """A bad configuration: names the file, the account and the field."""


class InvalidInput(ValueError):
    """Bad producer input, refused before anything is written or enqueued."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class NotFound(InvalidInput):
    """The job (or other object) named does not exist."""
