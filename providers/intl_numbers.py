"""International mobile numbers in Emay's form: `00` + country code + national number, via `phonenumbers`.

Accepted input: `+61 422 118 000`, `0061422118000`, and, when the job names its country (ISO 3166 code
such as `AU`, or the calling code `61`), `61422118000` or the national `0422 118 000`.  Mainland China
numbers are refused: they belong to the domestic SMS accounts, not to international SMS.
"""
from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from providers.errors import InvalidInput
from providers.validation import MAINLAND_MOBILE, shown

MAINLAND_CALLING_CODE = 86
MAINLAND_RULE = ("is a mainland China number: international SMS does not deliver to +86, "
                 "send it through a domestic SMS account (qyxs_sms)")
# separators people type inside numbers; anything else is left for phonenumbers to refuse
_SEPARATORS = re.compile(r"[\s\-().\u00a0]")
_DIGITS = re.compile(r"[0-9]+")
EMAY_FORM = re.compile(r"00[1-9][0-9]{5,14}")  # 00 + E.164 digits (at most 15)


class NumberRefused(ValueError):
    """Why one number cannot be sent internationally (the caller adds the field name)."""


def region_for(country: str | None) -> str | None:
    """The ISO region for a job's `country` option (`AU`, `au` or `61`); None when not given."""
    if country is None or str(country).strip() == "":
        return None
    text = str(country).strip()
    if _DIGITS.fullmatch(text):
        region = phonenumbers.region_code_for_country_code(int(text))
        if region == "ZZ":
            raise NumberRefused(f"{text} is not a country calling code")
        return region
    region = text.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise NumberRefused(f"{shown(text)} is not an ISO 3166 country code such as AU, GB or US")
    return region


@lru_cache(maxsize=65536)
def to_emay(raw: str, region: str | None = None) -> str:
    """`raw` as `00` + country code + national significant number, or NumberRefused saying why."""
    text = _SEPARATORS.sub("", raw or "")
    if not text:
        raise NumberRefused("is empty")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+"):
        if region is None:
            if MAINLAND_MOBILE.fullmatch(text):
                raise NumberRefused(MAINLAND_RULE)
            raise NumberRefused("must start with + or 00 and the country code (e.g. +61…), "
                                "or the job must give options.country")
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise NumberRefused(f"is not a phone number ({exc._msg})") from None
    if number.country_code == MAINLAND_CALLING_CODE:
        raise NumberRefused(MAINLAND_RULE)
    if not phonenumbers.is_valid_number(number):
        raise NumberRefused(f"is not a valid number for +{number.country_code}")
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return "00" + e164[1:]


def normalise_number(raw: str, region: str | None, field: str) -> str:
    """`to_emay` with the refusal as InvalidInput naming `field`."""
    try:
        return to_emay(raw, region)
    except NumberRefused as exc:
        raise InvalidInput(field, f"{shown(raw)} {exc}") from None
