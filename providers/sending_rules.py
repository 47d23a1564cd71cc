"""An account's sending rules as values: send windows, frequency caps, opt-out words, the key of a mobile.

Pure: parsed from `accounts.toml` (DESIGN §9 "Sending policy") and asked with an explicit `now`, so tests set
the clock by argument. The flow's `msgrelay.policy` applies them to jobs, chunks and the database.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: the zone windows and caps are read in unless an account says otherwise
DEFAULT_TIMEZONE = "Asia/Shanghai"
#: what an account of a kind people reply to treats as "stop" unless it says otherwise (DESIGN §9)
DEFAULT_OPT_OUT_KEYWORDS = ("TD", "T", "R", "退订")
#: kinds whose recipients reply with text: their accounts get the default opt-out words
REPLY_KINDS = frozenset({"sms", "ims", "mms"})
#: kinds a window never holds (a verification call is worthless later); one-recipient `ims` is held by no window
UNHELD_KINDS = frozenset({"vfcode"})
#: kinds the suppression list never stops (a verification code is asked for by its recipient)
UNSUPPRESSED_KINDS = frozenset({"vfcode"})

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
_CAP = re.compile(r"^\s*(\d{1,6})\s*/\s*(day|hour)\s*$")
_NOT_DIGITS = re.compile(r"[^0-9]")


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`; ValueError naming the rule when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai or Etc/GMT-8") from None


def _clock(text: str) -> time:
    match = _CLOCK.match(text.strip())
    if match is None:
        raise ValueError(f"{text.strip()!r} is not a time of day HH:MM (or HH:MM:SS), 00:00 to 23:59")
    return time(int(match[1]), int(match[2]), int(match[3] or 0))


@dataclass(frozen=True)
class Window:
    """Hours of the day when sending is allowed, in local time; `end` before `start` spans midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> Window:
        """`"08:00-21:00"` (seconds allowed: `"08:00:30-21:00"`); ValueError naming the rule."""
        if not isinstance(text, str) or text.count("-") != 1:
            raise ValueError("must look like \"08:00-21:00\" (start-end, local time)")
        start, end = (_clock(part) for part in text.split("-"))
        if start == end:
            raise ValueError("start and end are the same time: give an hour range such as 08:00-21:00")
        return cls(start, end)

    def __str__(self) -> str:
        return f"{_shown(self.start)}-{_shown(self.end)}"

    def contains(self, local: time) -> bool:
        """Whether sending is allowed at this local time of day (start included, end excluded)."""
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_open(self, now: datetime, tz: ZoneInfo) -> datetime | None:
        """None while open at `now`; else when it opens next (aware, UTC)."""
        local = now.astimezone(tz)
        if self.contains(local.timetz().replace(tzinfo=None)):
            return None
        day = local.date()
        for offset in range(3):  # today's opening, or tomorrow's (a day of a time-zone change: the one after)
            opens = _local(day + timedelta(days=offset), self.start, tz)
            if opens > now:
                return opens.astimezone(UTC)
        raise AssertionError("a window opens within three days")  # pragma: no cover


def _shown(clock: time) -> str:
    return clock.strftime("%H:%M:%S" if clock.second else "%H:%M")


def _local(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """`clock` on `day` in `tz`; a time skipped by a daylight-saving change is read as the change's moment."""
    when = datetime.combine(day, clock, tz)
    back = when.astimezone(UTC).astimezone(tz)
    if back.replace(tzinfo=None) == when.replace(tzinfo=None):
        return when
    # skipped: the change lies between `when` read with the offset after it (fold=1) and before it (fold=0); the
    # first moment that exists after it, where `Window.contains` turns true, not `when` + the gap (PEP 495)
    lo, hi = int(when.replace(fold=1).timestamp()), int(when.replace(fold=0).timestamp())
    before = datetime.fromtimestamp(lo, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if datetime.fromtimestamp(mid, tz).utcoffset() == before else (lo, mid)
    return datetime.fromtimestamp(hi, tz)


@dataclass(frozen=True)
class Hold:
    """A window keeps a job from sending: until when, and the words the job view shows."""

    until: datetime
    waiting: str


def window_hold(window: Window | None, tz: ZoneInfo, now: datetime) -> Hold | None:
    """The hold a window puts on sending at `now`, or None when sending is allowed."""
    if window is None:
        return None
    opens = window.next_open(now, tz)
    return None if opens is None else Hold(opens, f"send window opens {_shown(window.start)}")


@dataclass(frozen=True)
class Cap:
    """At most `limit` messages to one recipient per calendar `per` (day or hour) in the account's zone."""

    limit: int
    per: str

    @classmethod
    def parse(cls, text: str) -> Cap:
        """`"3/day"` or `"5/hour"`; ValueError naming the rule."""
        match = _CAP.match(text) if isinstance(text, str) else None
        if match is None or int(match[1]) < 1:
            raise ValueError(f"{text!r} is not a cap: write N/day or N/hour with N from 1 to 999999, e.g. \"3/day\"")
        return cls(int(match[1]), match[2])

    def __str__(self) -> str:
        return f"{self.limit}/{self.per}"

    def period(self, now: datetime, tz: ZoneInfo) -> tuple[str, datetime]:
        """The calendar period `now` falls in (`"d2026-12-04"`, `"h2026-12-04T19"`) and when it is over (UTC)."""
        local = now.astimezone(tz)
        if self.per == "day":
            key, end = f"d{local.date().isoformat()}", _local(local.date() + timedelta(days=1), time(0), tz)
        else:
            start = local.replace(minute=0, second=0, microsecond=0)
            key, end = f"h{start.strftime('%Y-%m-%dT%H')}", (start + timedelta(hours=1))
        return key, end.astimezone(UTC)


def parse_caps(value: str | Iterable[str] | None) -> tuple[Cap, ...]:
    """One cap (`"3/day"`) or several (`["1/hour", "5/day"]`); a unit given twice is refused."""
    if value is None:
        return ()
    caps = (Cap.parse(value),) if isinstance(value, str) else tuple(Cap.parse(v) for v in value)
    units = [c.per for c in caps]
    if len(set(units)) != len(units):
        raise ValueError("give at most one cap per unit (one N/day, one N/hour)")
    return caps


def keyword(text: str) -> str:
    """The form a reply and a keyword are compared in: full-width folded (NFKC), trimmed, case-folded."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def is_opt_out(content: str, keywords: Iterable[str]) -> bool:
    """Whether a reply is exactly one of the opt-out words (`TD`, `td`, `ＴＤ`, ` 退订 `), nothing more."""
    said = keyword(content)
    return bool(said) and any(said == keyword(k) for k in keywords)


def mobile_key(mobile: str) -> str:
    """One phone's key, whatever the form: digits only, no `00`/`+` prefix, no `86` before a mainland mobile
    (`+86 138-0013-8000`, `008613800138000` and `13800138000` are one key; `0061422118000` is `61422118000`)."""
    if len(mobile) == 11 and mobile.isascii() and mobile.isdigit() and mobile[0] == "1":
        return mobile  # a mainland mobile as submitted (nearly every one): already its key
    digits = _NOT_DIGITS.sub("", unicodedata.normalize("NFKC", mobile))  # full-width digits (an IME's) are digits
    digits = digits.removeprefix("00")
    if len(digits) == 13 and digits.startswith("861"):
        digits = digits[2:]
    return digits
