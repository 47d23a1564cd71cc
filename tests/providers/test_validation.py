"""Table-driven tests of the shared domestic validators."""
from __future__ import annotations

import pytest

from providers.base import Recipient
from providers.errors import InvalidInput
from providers.common import (
    option_text,
    require_flag,
    require_text,
    validate_custom_ids,
    validate_mainland_mobiles,
    validate_options,
)


def _recipients(*mobiles: str) -> list[Recipient]:
    return [Recipient(mobile=m, custom_id=f"id{i}") for i, m in enumerate(mobiles)]


@pytest.mark.parametrize("mobile", ["13800138000", "15538850000", "18001098901", "19912345678", "16612345678"])
def test_mainland_mobiles_accepted(mobile: str) -> None:
    validate_mainland_mobiles(_recipients(mobile))


@pytest.mark.parametrize("mobile", [
    "12345678901",        # second digit 2
    "10012345678",        # second digit 0
    "1380013800",         # 10 digits
    "138001380000",       # 12 digits
    "23800138000",        # does not start with 1
    "+8613800138000",     # country code
    "138 0013 8000",      # spaces
    "13800138000\n",      # `$` would let a trailing newline through
    "１３８００１３８０００",  # full-width digits match Python's \d
    "",
])
def test_mainland_mobiles_refused_naming_the_index(mobile: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validate_mainland_mobiles(_recipients("13800138000", mobile))
    assert err.value.field == "recipients[1].mobile"
    assert "mainland mobile number: 11 digits starting 13–19" in err.value.rule


@pytest.mark.parametrize("custom_id, field_rule", [
    ("a" * 64, None),
    ("", None),  # not assigned yet: the flow assigns ids
    ("a" * 65, "at most 64 characters, got 65"),
    ("a,b", "must not contain a comma"),
    (" x", "whitespace"),
])
def test_custom_ids(custom_id: str, field_rule: str | None) -> None:
    recipients = [Recipient("13800138000", "first"), Recipient("13800138001", custom_id)]
    if field_rule is None:
        validate_custom_ids(recipients, 64)
        return
    with pytest.raises(InvalidInput) as err:
        validate_custom_ids(recipients, 64)
    assert err.value.field == "recipients[1].custom_id"
    assert field_rule in err.value.rule


def test_duplicate_custom_id_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        validate_custom_ids([Recipient("13800138000", "x"), Recipient("13800138001", "x")], 64)
    assert err.value.field == "recipients[1].custom_id"
    assert "duplicate" in err.value.rule


def test_unknown_option_named_and_known_ones_listed() -> None:
    validate_options("notify", {"isInteractive": "1"}, {"isInteractive", "interactiveContent"})
    with pytest.raises(InvalidInput) as err:
        validate_options("notify", {"colour": "red"}, {"isInteractive", "interactiveContent"})
    assert err.value.field == "options.colour"
    assert "interactiveContent, isInteractive" in err.value.rule
    with pytest.raises(InvalidInput) as err:
        validate_options("vfcode", {"isInteractive": "1"}, frozenset())
    assert err.value.field == "options.isInteractive"
    assert "none" in err.value.rule


@pytest.mark.parametrize("value, max_chars, rule", [
    ("hello", 200, None),
    ("字" * 200, 200, None),
    ("字" * 201, 200, "at most 200 characters, got 201"),
    (None, 200, "is required"),
    ("   ", 200, "blank"),
    (1234, 200, "must be text"),
])
def test_require_text(value: object, max_chars: int, rule: str | None) -> None:
    if rule is None:
        assert require_text("content", value, max_chars) == value
        return
    with pytest.raises(InvalidInput) as err:
        require_text("content", value, max_chars)
    assert err.value.field == "content"
    assert rule in err.value.rule


@pytest.mark.parametrize("value, expected", [("1", "1"), (0, "0"), (None, None), ("abc", "abc")])
def test_option_text_normalises_to_strings(value: object, expected: str | None) -> None:
    assert option_text({"x": value}, "x") == expected


@pytest.mark.parametrize("value", [True, 1.5, [1]])
def test_option_text_refuses_other_types(value: object) -> None:
    with pytest.raises(InvalidInput) as err:
        option_text({"x": value}, "x")
    assert err.value.field == "options.x"


@pytest.mark.parametrize("value, ok", [("0", True), ("1", True), (1, True), (0, True), ("2", False), ("yes", False)])
def test_flags(value: object, ok: bool) -> None:
    if ok:
        require_flag({"isInteractive": value}, "isInteractive")
        return
    with pytest.raises(InvalidInput) as err:
        require_flag({"isInteractive": value}, "isInteractive")
    assert err.value.field == "options.isInteractive"
    assert 'must be "0" or "1"' in err.value.rule
