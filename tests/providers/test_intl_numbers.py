"""International number normalisation: every accepted form to `00` + country code, every refusal named."""
from __future__ import annotations

import pytest

from providers.errors import InvalidInput
from providers.common import EMAY_FORM, NumberRefused, normalise_number, region_for, to_emay

ACCEPTED = [
    ("+61422118000", None, "0061422118000"),  # the document's example mobile, written with +
    ("0061422118000", None, "0061422118000"),  # as the document writes it
    ("+61 422 118 000", None, "0061422118000"),
    ("+61-422-118-000", None, "0061422118000"),
    ("61422118000", "AU", "0061422118000"),  # country code without a prefix, country given
    ("0422 118 000", "AU", "0061422118000"),  # national form with its trunk 0
    ("447911123456", "GB", "00447911123456"),
    ("+1 650 253 0000", None, "0016502530000"),
    ("+852 5123 4567", None, "0085251234567"),  # Hong Kong is international, not mainland
    ("(0)7911 123456", "GB", "00447911123456"),
]
REFUSED = [
    ("+8613800138000", None, "mainland China"),
    ("008613800138000", None, "mainland China"),
    ("13800138000", None, "mainland China"),  # a bare mainland mobile: domestic accounts
    ("8613800138000", "CN", "mainland China"),
    ("61422118000", None, "options.country"),  # no prefix and no country
    ("+6142211", None, "not a valid number"),
    ("+999 1234567", None, "not a"),
    ("", None, "empty"),
    ("+61abc", None, "not a"),
    ("13800138000", "AU", "not a valid number"),
]


@pytest.mark.parametrize(("raw", "region", "expected"), ACCEPTED)
def test_accepted_forms_become_00_country_code(raw: str, region: str | None, expected: str) -> None:
    assert to_emay(raw, region) == expected
    assert EMAY_FORM.fullmatch(expected)


@pytest.mark.parametrize(("raw", "region", "says"), REFUSED)
def test_refused_numbers_say_why(raw: str, region: str | None, says: str) -> None:
    with pytest.raises(NumberRefused, match=says):
        to_emay(raw, region)


def test_mainland_refusal_points_to_domestic_accounts() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_number("+86 138 0013 8000", None, "recipients[3].mobile")
    assert caught.value.field == "recipients[3].mobile"
    assert "domestic" in caught.value.rule and "+86" in caught.value.rule


@pytest.mark.parametrize(("country", "region"), [("AU", "AU"), ("au", "AU"), ("61", "AU"), ("44", "GB"),
                                                 (None, None), ("", None)])
def test_country_option_by_iso_code_or_calling_code(country: str | None, region: str | None) -> None:
    assert region_for(country) == region


@pytest.mark.parametrize("country", ["Australia", "XX", "999"])
def test_unknown_country_is_refused(country: str) -> None:
    with pytest.raises(NumberRefused):
        region_for(country)
