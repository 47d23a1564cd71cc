"""Pure validators shared by the domestic providers; each refusal is an InvalidInput naming field and rule.

They run at submission, before anything is written, over every recipient of a job (a million is normal),
so each is one pass with precompiled patterns and no I/O.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from providers.base import Recipient
from providers.errors import InvalidInput

# ASCII digits only: Python's \d also matches full-width and other Unicode digits the providers refuse,
# and fullmatch (not `$`) so a trailing newline is not let through.
MAINLAND_MOBILE = re.compile(r"1[3-9][0-9]{9}")
MAINLAND_MOBILE_RULE = "must be a mainland mobile number: 11 digits starting 13–19"


def shown(value: Any, limit: int = 24) -> str:
    """A short printable form of a refused value for an error's rule."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validate_mainland_mobiles(recipients: Sequence[Recipient]) -> None:
    """Refuse the first recipient whose mobile is not a mainland mobile number (^1[3-9]\\d{9}$)."""
    match = MAINLAND_MOBILE.fullmatch
    for i, recipient in enumerate(recipients):
        mobile = recipient.mobile
        if not isinstance(mobile, str) or match(mobile) is None:
            raise InvalidInput(f"recipients[{i}].mobile", f"{MAINLAND_MOBILE_RULE}, got {shown(mobile)}")


def validate_custom_ids(recipients: Sequence[Recipient], max_len: int) -> None:
    """Refuse custom ids longer than `max_len`, containing a comma (the lists are comma-separated),
    or used twice; an empty id means 'not assigned yet' and is left to the flow."""
    seen: set[str] = set()
    for i, recipient in enumerate(recipients):
        custom_id = recipient.custom_id
        if custom_id is None or custom_id == "":
            continue
        field = f"recipients[{i}].custom_id"
        if not isinstance(custom_id, str):
            raise InvalidInput(field, f"must be a string, got {type(custom_id).__name__}")
        if len(custom_id) > max_len:
            raise InvalidInput(field, f"at most {max_len} characters, got {len(custom_id)}")
        if "," in custom_id:
            raise InvalidInput(field, "must not contain a comma (the provider separates ids with commas)")
        if custom_id != custom_id.strip():
            raise InvalidInput(field, "must not start or end with whitespace")
        if custom_id in seen:
            raise InvalidInput(field, f"duplicate custom id {shown(custom_id)}: each recipient needs its own")
        seen.add(custom_id)


def validate_options(kind: str, options: Mapping[str, Any] | None, allowed: Iterable[str]) -> None:
    """Refuse an option the kind does not know, listing the ones it does."""
    known = sorted(allowed)
    for name in options or {}:
        if name not in known:
            listed = ", ".join(known) if known else "none"
            raise InvalidInput(f"options.{name}", f"unknown option for kind '{kind}'; known options: {listed}")


def require_text(field: str, value: Any, max_chars: int | None = None) -> str:
    """Return `value` if it is a non-blank string of at most `max_chars` characters, else refuse it."""
    if value is None:
        raise InvalidInput(field, "is required")
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(field, "is required: got blank text")
    if max_chars is not None and len(value) > max_chars:
        raise InvalidInput(field, f"at most {max_chars} characters, got {len(value)}")
    return value


def require_nonempty(recipients: Sequence[Recipient]) -> None:
    """Refuse a job without recipients."""
    if not recipients:
        raise InvalidInput("recipients", "at least one recipient is required")


def option_text(options: Mapping[str, Any], name: str) -> str | None:
    """An option normalised to the string the form carries (ints become digits); None when absent.

    Booleans and containers are refused: `True` would be sent as "True", which no provider means.
    """
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInput(f"options.{name}", f"must be a string or an integer, got {type(value).__name__}")
    return str(value)


def require_flag(options: Mapping[str, Any], name: str) -> None:
    """Refuse a 0/1 flag option that is neither "0" nor "1" (ints 0 and 1 are accepted too)."""
    value = option_text(options, name)
    if value is not None and value not in ("0", "1"):
        raise InvalidInput(f"options.{name}", f'must be "0" or "1", got {shown(options[name])}')
