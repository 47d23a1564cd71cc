"""Sending rules as values (DESIGN §9): windows, holds, caps and their periods, opt-out words, mobile keys.

Every clock is an argument: `now` is written in UTC and the zone is given, so nothing here sleeps.
"""
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from providers.sending_rules import (
    DEFAULT_OPT_OUT_KEYWORDS,
    DEFAULT_TIMEZONE,
    Cap,
    Hold,
    Window,
    is_opt_out,
    keyword,
    mobile_key,
    parse_caps,
    window_hold,
    zone,
)

SHANGHAI = zone("Asia/Shanghai")  # UTC+8 all year
BERLIN = zone("Europe/Berlin")  # 2026-03-29 02:00 CET → 03:00 CEST (01:00 UTC); 2026-10-25 03:00 CEST → 02:00 CET
HAVANA = zone("America/Havana")  # 2026-03-08 00:00 CST → 01:00 CDT (05:00 UTC): a day without a midnight
KOLKATA = zone("Asia/Kolkata")  # UTC+5:30: its hours start at half past UTC hours
UTC_ZONE = zone("UTC")


def utc(*parts: int) -> datetime:
    """An aware UTC datetime from year, month, day, hour[, minute[, second]]."""
    return datetime(*parts, tzinfo=UTC)


def clock(text: str) -> time:
    """A time of day from HH:MM[:SS]."""
    return time.fromisoformat(text)


# -- windows -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, start, end, shown", [
    ("08:00-21:00", "08:00", "21:00", "08:00-21:00"),
    (" 08:00 - 21:00 ", "08:00", "21:00", "08:00-21:00"),
    ("22:00-06:00", "22:00", "06:00", "22:00-06:00"),
    ("08:00:30-21:00", "08:00:30", "21:00", "08:00:30-21:00"),
    ("08:00:00-21:00:00", "08:00", "21:00", "08:00-21:00"),
    ("00:00-23:59:59", "00:00", "23:59:59", "00:00-23:59:59"),
    ("08:00-00:00", "08:00", "00:00", "08:00-00:00"),
])
def test_window_parses_and_shows(text, start, end, shown):
    window = Window.parse(text)
    assert (window.start, window.end) == (clock(start), clock(end))
    assert str(window) == shown and Window.parse(str(window)) == window


@pytest.mark.parametrize("text, rule", [
    ("", 'must look like "08:00-21:00"'),
    ("08:00", 'must look like "08:00-21:00"'),
    ("08:00-21:00-22:00", 'must look like "08:00-21:00"'),
    ("08:00–21:00", 'must look like "08:00-21:00"'),  # an en dash
    (None, 'must look like "08:00-21:00"'),
    (800, 'must look like "08:00-21:00"'),
    ("8:00-21:00", "is not a time of day HH:MM"),
    ("24:00-06:00", "is not a time of day HH:MM"),
    ("08:60-21:00", "is not a time of day HH:MM"),
    ("08:00-21:00:60", "is not a time of day HH:MM"),
    ("08-21", "is not a time of day HH:MM"),
    ("0800-2100", "is not a time of day HH:MM"),
    ("8am-9pm", "is not a time of day HH:MM"),
    ("08:00-", "is not a time of day HH:MM"),
    ("08:00-08:00", "start and end are the same time"),
    ("08:00-08:00:00", "start and end are the same time"),
])
def test_bad_window_names_the_rule(text, rule):
    with pytest.raises(ValueError) as info:
        Window.parse(text)
    assert rule in str(info.value)


@pytest.mark.parametrize("window, local, open_", [
    ("08:00-21:00", "07:59:59", False),
    ("08:00-21:00", "08:00", True),  # start included
    ("08:00-21:00", "12:00", True),
    ("08:00-21:00", "20:59:59", True),
    ("08:00-21:00", "21:00", False),  # end excluded
    ("08:00-21:00", "00:00", False),
    ("22:00-06:00", "21:59:59", False),
    ("22:00-06:00", "22:00", True),
    ("22:00-06:00", "23:59:59", True),
    ("22:00-06:00", "00:00", True),
    ("22:00-06:00", "05:59:59", True),
    ("22:00-06:00", "06:00", False),
    ("22:00-06:00", "12:00", False),
    ("08:00:30-21:00:15", "08:00:29", False),
    ("08:00:30-21:00:15", "08:00:30", True),
    ("08:00:30-21:00:15", "21:00:14", True),
    ("08:00:30-21:00:15", "21:00:15", False),
    ("08:00-00:00", "23:59:59", True),  # until midnight
    ("08:00-00:00", "00:00", False),
    ("08:00-00:00", "07:59:59", False),
    ("00:00-08:00", "00:00", True),
    ("00:00-08:00", "08:00", False),
])
def test_window_contains(window, local, open_):
    assert Window.parse(window).contains(clock(local)) is open_


@pytest.mark.parametrize("window, tz, now, opens", [
    # Asia/Shanghai is UTC+8: 08:00 there is 00:00 UTC
    ("08:00-21:00", SHANGHAI, utc(2026, 12, 4, 0, 0), None),  # 08:00 local: open
    ("08:00-21:00", SHANGHAI, utc(2026, 12, 3, 23, 59, 59), utc(2026, 12, 4, 0, 0)),  # 07:59:59: today's
    ("08:00-21:00", SHANGHAI, utc(2026, 12, 4, 12, 59, 59), None),  # 20:59:59
    ("08:00-21:00", SHANGHAI, utc(2026, 12, 4, 13, 0), utc(2026, 12, 5, 0, 0)),  # 21:00: tomorrow's
    ("08:00-21:00", SHANGHAI, utc(2026, 12, 4, 15, 30), utc(2026, 12, 5, 0, 0)),  # 23:30 local
    # the local date is a day ahead of the UTC date: 00:30 and 06:00 on 12-05 local, opening at 08:00 that day
    ("08:00-21:00", SHANGHAI, utc(2026, 12, 4, 16, 30), utc(2026, 12, 5, 0, 0)),
    ("08:00-21:00", SHANGHAI, utc(2026, 12, 4, 22, 0), utc(2026, 12, 5, 0, 0)),
    # the same window read in UTC: 16:30 UTC is open, 22:00 UTC waits for 08:00 UTC
    ("08:00-21:00", UTC_ZONE, utc(2026, 12, 4, 16, 30), None),
    ("08:00-21:00", UTC_ZONE, utc(2026, 12, 4, 22, 0), utc(2026, 12, 5, 8, 0)),
    # overnight
    ("22:00-06:00", SHANGHAI, utc(2026, 12, 4, 14, 0), None),  # 22:00 local
    ("22:00-06:00", SHANGHAI, utc(2026, 12, 4, 21, 59, 59), None),  # 05:59:59 on 12-05 local
    ("22:00-06:00", SHANGHAI, utc(2026, 12, 4, 22, 0), utc(2026, 12, 5, 14, 0)),  # 06:00: tonight's
    ("22:00-06:00", SHANGHAI, utc(2026, 12, 4, 4, 0), utc(2026, 12, 4, 14, 0)),  # noon: tonight's
    ("22:00-06:00", SHANGHAI, utc(2026, 12, 4, 13, 59, 59), utc(2026, 12, 4, 14, 0)),
    # seconds
    ("08:00:30-21:00", SHANGHAI, utc(2026, 12, 4, 0, 0, 29), utc(2026, 12, 4, 0, 0, 30)),
    ("08:00:30-21:00", SHANGHAI, utc(2026, 12, 4, 0, 0, 30), None),
    # Europe/Berlin springs forward on 2026-03-29: 02:30 does not exist; the window opens when the clock jumps
    ("02:30-05:00", BERLIN, utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 1, 0)),  # 00:00 CET → 03:00 CEST
    ("02:30-05:00", BERLIN, utc(2026, 3, 29, 0, 59, 59), utc(2026, 3, 29, 1, 0)),  # 01:59:59 CET
    ("02:30-05:00", BERLIN, utc(2026, 3, 29, 1, 0), None),  # 03:00 CEST
    ("02:30-05:00", BERLIN, utc(2026, 3, 29, 3, 0), utc(2026, 3, 30, 0, 30)),  # 05:00 CEST: 02:30 CEST tomorrow
    ("08:00-21:00", BERLIN, utc(2026, 3, 28, 21, 0), utc(2026, 3, 29, 6, 0)),  # 22:00 CET → 08:00 CEST
    # … and falls back on 2026-10-25: 02:30 happens twice, the first counts
    ("08:00-21:00", BERLIN, utc(2026, 10, 24, 20, 0), utc(2026, 10, 25, 7, 0)),  # 22:00 CEST → 08:00 CET
    ("02:30-05:00", BERLIN, utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 0, 30)),  # 00:00 CEST → 02:30 CEST
])
def test_next_open(window, tz, now, opens):
    parsed = Window.parse(window)
    got = parsed.next_open(now, tz)
    assert got == opens
    if got is not None:  # it is the first moment the window is open, and in UTC
        assert got.utcoffset() == timedelta(0)
        assert parsed.contains(got.astimezone(tz).time())
        assert not parsed.contains((got - timedelta(seconds=1)).astimezone(tz).time())


@pytest.mark.parametrize("window, now, hold", [
    (None, utc(2026, 12, 4, 15, 0), None),
    ("08:00-21:00", utc(2026, 12, 4, 3, 0), None),
    ("08:00-21:00", utc(2026, 12, 4, 15, 0), Hold(utc(2026, 12, 5, 0, 0), "send window opens 08:00")),
    ("08:00:30-21:00", utc(2026, 12, 4, 15, 0), Hold(utc(2026, 12, 5, 0, 0, 30), "send window opens 08:00:30")),
    ("22:00-06:00", utc(2026, 12, 4, 3, 0), Hold(utc(2026, 12, 4, 14, 0), "send window opens 22:00")),
])
def test_window_hold(window, now, hold):
    assert window_hold(window and Window.parse(window), SHANGHAI, now) == hold


# -- caps ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, cap", [
    ("3/day", Cap(3, "day")),
    ("5/hour", Cap(5, "hour")),
    (" 12 / day ", Cap(12, "day")),
    ("1/hour", Cap(1, "hour")),
    ("999999/day", Cap(999999, "day")),
])
def test_cap_parses(text, cap):
    assert Cap.parse(text) == cap and Cap.parse(str(cap)) == cap


@pytest.mark.parametrize("text", [
    "0/day", "3/week", "x/day", "3/days", "3", "/day", "-1/day", "1.5/day", "1000000/day", "3 per day", "", None, 3,
])
def test_bad_cap_names_the_rule(text):
    with pytest.raises(ValueError) as info:
        Cap.parse(text)
    assert "N/day or N/hour" in str(info.value)


@pytest.mark.parametrize("value, caps", [
    (None, ()),
    ([], ()),
    ("3/day", (Cap(3, "day"),)),
    (["1/hour", "5/day"], (Cap(1, "hour"), Cap(5, "day"))),
    (("5/day",), (Cap(5, "day"),)),
])
def test_parse_caps(value, caps):
    assert parse_caps(value) == caps


@pytest.mark.parametrize("value, rule", [
    (["3/day", "1/day"], "at most one cap per unit"),
    (["1/hour", "2/hour", "3/day"], "at most one cap per unit"),
    (["3/day", "x/hour"], "N/day or N/hour"),
    ("", "N/day or N/hour"),
])
def test_bad_caps_name_the_rule(value, rule):
    with pytest.raises(ValueError) as info:
        parse_caps(value)
    assert rule in str(info.value)


@pytest.mark.parametrize("per, tz, now, key, ends", [
    # Asia/Shanghai: a day ends at 16:00 UTC, an hour on the UTC hour
    ("day", SHANGHAI, utc(2026, 12, 4, 11, 0), "d2026-12-04", utc(2026, 12, 4, 16, 0)),
    ("day", SHANGHAI, utc(2026, 12, 3, 16, 0), "d2026-12-04", utc(2026, 12, 4, 16, 0)),  # 00:00 local
    ("day", SHANGHAI, utc(2026, 12, 4, 15, 59, 59), "d2026-12-04", utc(2026, 12, 4, 16, 0)),  # 23:59:59
    ("day", SHANGHAI, utc(2026, 12, 4, 16, 0), "d2026-12-05", utc(2026, 12, 5, 16, 0)),
    ("day", SHANGHAI, utc(2026, 12, 31, 16, 0), "d2027-01-01", utc(2027, 1, 1, 16, 0)),
    ("day", UTC_ZONE, utc(2026, 12, 4, 16, 0), "d2026-12-04", utc(2026, 12, 5, 0, 0)),
    ("hour", SHANGHAI, utc(2026, 12, 4, 11, 0), "h2026-12-04T19", utc(2026, 12, 4, 12, 0)),
    ("hour", SHANGHAI, utc(2026, 12, 4, 11, 30), "h2026-12-04T19", utc(2026, 12, 4, 12, 0)),
    ("hour", SHANGHAI, utc(2026, 12, 4, 11, 59, 59), "h2026-12-04T19", utc(2026, 12, 4, 12, 0)),
    ("hour", SHANGHAI, utc(2026, 12, 4, 15, 59, 59), "h2026-12-04T23", utc(2026, 12, 4, 16, 0)),
    ("hour", SHANGHAI, utc(2026, 12, 4, 16, 0), "h2026-12-05T00", utc(2026, 12, 4, 17, 0)),
    ("hour", KOLKATA, utc(2026, 12, 4, 13, 45), "h2026-12-04T19", utc(2026, 12, 4, 14, 30)),  # 19:15 IST
    # days and hours that are not 24 h and 1 h long
    ("day", BERLIN, utc(2026, 3, 29, 12, 0), "d2026-03-29", utc(2026, 3, 29, 22, 0)),  # 23 h
    ("hour", BERLIN, utc(2026, 3, 29, 0, 30), "h2026-03-29T01", utc(2026, 3, 29, 1, 0)),  # 01:30 CET, then 03:00
    ("hour", BERLIN, utc(2026, 3, 29, 1, 30), "h2026-03-29T03", utc(2026, 3, 29, 2, 0)),  # 03:30 CEST
    ("day", HAVANA, utc(2026, 3, 7, 12, 0), "d2026-03-07", utc(2026, 3, 8, 5, 0)),  # ends when 00:00 → 01:00
])
def test_cap_period(per, tz, now, key, ends):
    got_key, got_ends = Cap(3, per).period(now, tz)
    assert (got_key, got_ends) == (key, ends)
    assert got_ends.utcoffset() == timedelta(0) and got_ends > now
    assert len(got_key) <= 16  # frequency_count.period is varchar(16)


def test_a_period_is_the_same_until_it_ends():
    cap = Cap(1, "hour")
    key, ends = cap.period(utc(2026, 12, 4, 11, 0), SHANGHAI)
    assert cap.period(ends - timedelta(microseconds=1), SHANGHAI) == (key, ends)
    assert cap.period(ends, SHANGHAI)[0] != key


# -- opt-out words -------------------------------------------------------------------------------------------------

def test_default_words():
    assert DEFAULT_OPT_OUT_KEYWORDS == ("TD", "T", "R", "退订") and DEFAULT_TIMEZONE == "Asia/Shanghai"


@pytest.mark.parametrize("text, folded", [
    ("TD", "td"),
    ("ＴＤ", "td"),  # full width
    (" 退订 ", "退订"),
    ("\u3000Ｔｄ\u3000", "td"),  # ideographic spaces
    ("TD\r\n", "td"),
    ("", ""),
])
def test_keyword_folds(text, folded):
    assert keyword(text) == folded


@pytest.mark.parametrize("reply, stop", [
    ("TD", True), ("td", True), ("ＴＤ", True), ("Td", True), ("tD", True), ("退订", True), (" 退订 ", True),
    (" T ", True), ("t", True), ("R", True), ("r", True), ("Ｒ", True), ("TD\n", True), ("\u3000TD\u3000", True),
    ("TD 谢谢", False), ("", False), ("   ", False), ("TDD", False), ("TD please", False), ("回T退订", False),
    ("T D", False), ("TD。", False), ("退 订", False), ("RT", False), ("Y", False), ("好的", False),
])
def test_is_opt_out_with_default_words(reply, stop):
    assert is_opt_out(reply, DEFAULT_OPT_OUT_KEYWORDS) is stop


@pytest.mark.parametrize("reply, words, stop", [
    ("stop", ["STOP", "取消"], True),
    ("ＳＴＯＰ", ["STOP", "取消"], True),
    (" 取消 ", ["STOP", "取消"], True),
    ("TD", ["STOP", "取消"], False),  # own words replace the defaults
    ("td", [" TD "], True),  # a word is folded like a reply
    ("td", ["ＴＤ"], True),
    ("TD", [], False),  # no words: nothing opts out
    ("", [""], False),  # an empty reply never does
])
def test_is_opt_out_with_own_words(reply, words, stop):
    assert is_opt_out(reply, words) is stop


# -- mobile keys and zones -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mobile, key", [
    ("13800138000", "13800138000"),
    ("+86 138-0013-8000", "13800138000"),
    ("008613800138000", "13800138000"),
    ("8613800138000", "13800138000"),
    ("+8613800138000", "13800138000"),
    ("(+86) 138 0013 8000", "13800138000"),
    ("１３８００１３８０００", "13800138000"),  # full width, as a Chinese input method types it
    ("＋８６ １３８－００１３－８０００", "13800138000"),
    ("0061422118000", "61422118000"),
    ("+61 422 118 000", "61422118000"),
    ("+1 (415) 555-0100", "14155550100"),
    ("861012345678", "861012345678"),  # 12 digits: not +86 before a mainland mobile
    ("", ""),
])
def test_mobile_key(mobile, key):
    assert mobile_key(mobile) == key


@pytest.mark.parametrize("name", ["Asia/Shanghai", "UTC", "Etc/GMT-8", "Europe/Berlin", "America/New_York"])
def test_zone(name):
    assert zone(name).key == name


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "Asia/Shanghai ", "../etc/passwd", "Asia", "+08:00"])
def test_unknown_zone_names_the_rule(name):
    with pytest.raises(ValueError) as info:
        zone(name)
    assert f"unknown time zone {name!r}" in str(info.value) and "IANA" in str(info.value)
