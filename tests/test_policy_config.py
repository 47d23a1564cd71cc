"""Sending policy in accounts.toml (DESIGN §9): errors naming file, account and field; accessors; reading the file
again when it changes, keeping the accounts before when an edit is broken or the file is gone."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from msgrelay import accounts as accounts_module
from msgrelay.accounts import Account, get_accounts, load_accounts, parse_accounts
from msgrelay.settings import get_settings, reload_settings
from providers.errors import ConfigError
from providers.registry import get_provider
from providers.sending_rules import DEFAULT_OPT_OUT_KEYWORDS, Cap, Window

CREDENTIALS = {
    "emay_voice": 'app_id = "EUCP-EMY-1"\nsecret_key = "k-voice"\n',
    "emay_voice_sms": 'app_id = "EUCP-EMY-2"\nsecret_key = "k-voice-sms"\n',
    "emay_ims": 'app_id = "EUCP-EMY-3"\nsecret_key = "k-ims"\n',
    "ihuyi_mms": 'api_id = "2RYN7CQHL1M"\napi_key = "k-mms"\nproduct_id = 1001\n',
    "qyxs_sms": 'userid = "12"\naccount = "user"\npassword = "p-sms"\n',
}


def account_toml(provider: str, policy: str = "", *, name: str = "a") -> str:
    """One account table of `provider` with working credentials and the given policy lines."""
    return (f'[accounts.{name}]\nprovider = "{provider}"\nbase_url = "http://127.0.0.1:18080"\n'
            f"{CREDENTIALS[provider]}{policy}\n")


def parsed(provider: str, policy: str = "") -> Account:
    """The account parsed from `account_toml(provider, policy)`."""
    return parse_accounts(account_toml(provider, policy), source="f.toml")["a"]


# -- errors --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("provider, policy, field, rule", [
    ("qyxs_sms", 'send_window = "08:00-25:00"', "send_window", "is not a time of day HH:MM"),
    ("qyxs_sms", 'send_window = "08:00"', "send_window", 'must look like "08:00-21:00"'),
    ("qyxs_sms", 'send_window = "09:00-09:00"', "send_window", "start and end are the same time"),
    ("qyxs_sms", "send_window = 8", "send_window", "valid string"),
    ("qyxs_sms", 'send_windows = {sms = "9-20"}', "send_windows", "sms: '9' is not a time of day"),
    ("emay_voice", 'send_windows = {notify = "08:00-21:00", marketing = "nine to five"}', "send_windows",
     "marketing: must look like"),
    ("emay_voice", "send_windows = {marketing = 9}", "send_windows.marketing", "valid string"),
    ("qyxs_sms", 'send_windows = {marketing = "09:00-20:00"}', "send_windows.marketing", "qyxs_sms sends kinds sms"),
    ("emay_voice", 'send_windows = {sms = "09:00-20:00"}', "send_windows.sms",
     "emay_voice sends kinds notify, vfcode, marketing"),
    ("ihuyi_mms", 'send_windows = {ims = "09:00-20:00"}', "send_windows.ims", "ihuyi_mms sends kinds mms"),
    ("qyxs_sms", 'timezone = "Mars/Olympus_Mons"', "timezone", "unknown time zone 'Mars/Olympus_Mons'"),
    ("qyxs_sms", 'timezone = ""', "timezone", "unknown time zone"),
    ("qyxs_sms", 'timezone = "+08:00"', "timezone", "use an IANA name"),
    ("qyxs_sms", 'frequency_cap = "0/day"', "frequency_cap", "N/day or N/hour"),
    ("qyxs_sms", 'frequency_cap = "3/week"', "frequency_cap", "N/day or N/hour"),
    ("qyxs_sms", 'frequency_cap = "x/day"', "frequency_cap", "N/day or N/hour"),
    ("qyxs_sms", 'frequency_cap = ["1/hour", "x/day"]', "frequency_cap", "'x/day' is not a cap"),
    ("qyxs_sms", 'frequency_cap = ["3/day", "1/day"]', "frequency_cap", "at most one cap per unit"),
    ("qyxs_sms", "frequency_cap = 3", "frequency_cap", "valid string"),
    ("qyxs_sms", 'opt_out_keywords = ["TD", ""]', "opt_out_keywords", "must not be empty"),
    ("qyxs_sms", 'opt_out_keywords = ["\u3000"]', "opt_out_keywords", "must not be empty"),
    ("qyxs_sms", 'opt_out_keywords = "TD"', "opt_out_keywords", "valid list"),
    ("qyxs_sms", 'send_windw = "08:00-21:00"', "send_windw", "Extra inputs are not permitted"),  # a typo
])
def test_bad_policy_names_file_account_and_field(provider, policy, field, rule):
    with pytest.raises(ConfigError) as info:
        parse_accounts(account_toml(provider, policy, name="promo"), source="f.toml")
    message = str(info.value)
    assert message.startswith(f"f.toml: account 'promo': field '{field}") and rule in message


def test_bad_policy_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "accounts.toml"
    path.write_text(account_toml("qyxs_sms", 'frequency_cap = "3/week"', name="promo"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_accounts(path)
    assert str(info.value).startswith(f"{path}: account 'promo': field 'frequency_cap'")


# -- good ones -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("provider, policy, kind, window", [
    ("qyxs_sms", "", "sms", None),
    ("qyxs_sms", 'send_window = "08:00-21:00"', "sms", "08:00-21:00"),
    ("qyxs_sms", 'send_window = " 08:00 - 21:00:00 "', "sms", "08:00-21:00"),
    ("qyxs_sms", 'send_window = "22:00-06:00"', "sms", "22:00-06:00"),
    ("qyxs_sms", 'send_window = "08:00-21:00"\nsend_windows = {sms = "09:30:15-20:00"}', "sms", "09:30:15-20:00"),
    ("emay_voice", 'send_window = "08:00-21:00"\nsend_windows = {marketing = "09:00-20:00"}', "marketing",
     "09:00-20:00"),
    ("emay_voice", 'send_window = "08:00-21:00"\nsend_windows = {marketing = "09:00-20:00"}', "notify",
     "08:00-21:00"),
    ("emay_voice", 'send_windows = {marketing = "09:00-20:00"}', "notify", None),
    ("emay_voice", '[accounts.a.send_windows]\nmarketing = "10:00-19:00"', "marketing", "10:00-19:00"),
])
def test_window_for(provider, policy, kind, window):
    account = parsed(provider, policy)
    assert account.window_for(kind) == (window and Window.parse(window))


def test_windows_are_kept_as_written_normalised():
    account = parsed("emay_voice", 'send_window = " 08:00 - 21:00:00 "\nsend_windows = {marketing = "09:00:00-20:00"}')
    assert account.send_window == "08:00-21:00" and account.send_windows == {"marketing": "09:00-20:00"}


@pytest.mark.parametrize("policy, zone_name", [
    ("", "Asia/Shanghai"),
    ('timezone = "Europe/Berlin"', "Europe/Berlin"),
    ('timezone = "UTC"', "UTC"),
    ('timezone = "Etc/GMT-8"', "Etc/GMT-8"),
])
def test_tz(policy, zone_name):
    account = parsed("qyxs_sms", policy)
    assert account.timezone == zone_name and account.tz() == ZoneInfo(zone_name)


@pytest.mark.parametrize("policy, caps", [
    ("", ()),
    ('frequency_cap = "3/day"', (Cap(3, "day"),)),
    ('frequency_cap = "5/hour"', (Cap(5, "hour"),)),
    ('frequency_cap = ["1/hour", "5/day"]', (Cap(1, "hour"), Cap(5, "day"))),
    ("frequency_cap = []", ()),
])
def test_caps(policy, caps):
    assert parsed("qyxs_sms", policy).caps() == caps


@pytest.mark.parametrize("provider, policy, words", [
    ("qyxs_sms", "", DEFAULT_OPT_OUT_KEYWORDS),
    ("ihuyi_mms", "", DEFAULT_OPT_OUT_KEYWORDS),
    ("emay_ims", "", DEFAULT_OPT_OUT_KEYWORDS),
    ("emay_voice", "", ()),
    ("emay_voice_sms", "", ()),
    ("qyxs_sms", "opt_out_keywords = []", ()),  # explicit: none
    ("qyxs_sms", 'opt_out_keywords = ["STOP", "取消"]', ("STOP", "取消")),
    ("emay_voice", 'opt_out_keywords = ["1"]', ("1",)),
])
def test_opt_out_words(provider, policy, words):
    account = parsed(provider, policy)
    assert account.opt_out_words(get_provider(provider).kinds) == words


def test_policy_fields_leave_secrets_masked():
    account = parsed("qyxs_sms", 'send_window = "08:00-21:00"\nfrequency_cap = "3/day"\nopt_out_keywords = ["TD"]')
    assert "p-sms" not in repr(account) and "08:00-21:00" in repr(account)


# -- reading the file again ----------------------------------------------------------------------------------------

WINDOW_A = account_toml("qyxs_sms", 'send_window = "08:00-21:00"', name="promo")
WINDOW_B = account_toml("qyxs_sms", 'send_window = "09:30-20:00"\nfrequency_cap = "3/day"', name="promo")
BROKEN = account_toml("qyxs_sms", 'send_window = "09:30-25:00"', name="promo")
RELOAD_S = 0.05


def write(path: Path, text: str) -> None:
    """Write the file as an edit would, its stamp surely new (a file's clock may tick coarser than the test)."""
    stamp = max(path.stat().st_mtime_ns + 10**9 if path.exists() else 0, time.time_ns())
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(stamp, stamp))


def after_interval() -> None:
    """Let the reload interval pass (the one wait here: get_accounts reads the monotonic clock)."""
    time.sleep(RELOAD_S * 1.5)


def window_of_promo() -> Window | None:
    """The window get_accounts gives the account `promo` now."""
    return get_accounts()["promo"].window_for("sms")


@pytest.fixture
def accounts_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The settings point at a new accounts file, looked at every RELOAD_S; the session's settings and cache after."""
    session_file = get_settings().accounts_file
    saved_cache = dict(accounts_module._cache)
    path = tmp_path / "accounts.toml"
    monkeypatch.setenv("MSGRELAY_ACCOUNTS_FILE", str(path))
    monkeypatch.setenv("MSGRELAY_ACCOUNTS_RELOAD_S", str(RELOAD_S))
    reload_settings()
    yield path
    monkeypatch.undo()
    reload_settings()
    accounts_module._cache.clear()
    accounts_module._cache.update(saved_cache)
    assert get_settings().accounts_file == session_file == os.environ["MSGRELAY_ACCOUNTS_FILE"]


def test_an_edit_is_seen_after_the_interval(accounts_file):
    # given
    write(accounts_file, WINDOW_A)
    assert window_of_promo() == Window.parse("08:00-21:00")
    # when
    write(accounts_file, WINDOW_B)
    # then
    assert window_of_promo() == Window.parse("08:00-21:00")  # not looked at again yet
    after_interval()
    assert window_of_promo() == Window.parse("09:30-20:00") and get_accounts()["promo"].caps() == (Cap(3, "day"),)


def test_a_new_account_and_a_file_created_later_are_seen(accounts_file):
    # given no file: no accounts
    assert get_accounts() == {}
    # when
    write(accounts_file, WINDOW_A)
    after_interval()
    # then
    assert window_of_promo() == Window.parse("08:00-21:00")
    write(accounts_file, WINDOW_A + account_toml("emay_voice", name="voice"))
    after_interval()
    assert sorted(get_accounts()) == ["promo", "voice"]


def test_a_broken_edit_keeps_the_accounts_and_is_logged(accounts_file, caplog):
    # given
    write(accounts_file, WINDOW_A)
    before = get_accounts()
    # when
    write(accounts_file, BROKEN)
    after_interval()
    with caplog.at_level(logging.ERROR, logger="msgrelay.accounts"):
        got = get_accounts()
    # then
    assert got is before and window_of_promo() == Window.parse("08:00-21:00")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith(f"{accounts_file}: account 'promo': field 'send_window'")
    # logged once, not at every look; the mended file is read
    caplog.clear()
    after_interval()
    with caplog.at_level(logging.ERROR, logger="msgrelay.accounts"):
        get_accounts()
    assert not [r for r in caplog.records if r.levelno == logging.ERROR]
    write(accounts_file, WINDOW_B)
    after_interval()
    assert window_of_promo() == Window.parse("09:30-20:00")


def test_a_deleted_file_keeps_the_accounts(accounts_file):
    # given
    write(accounts_file, WINDOW_A)
    before = get_accounts()
    # when
    accounts_file.unlink()
    after_interval()
    # then
    assert get_accounts() is before
    write(accounts_file, WINDOW_B)
    after_interval()
    assert window_of_promo() == Window.parse("09:30-20:00")


def test_a_file_gone_while_read_again_keeps_the_accounts(accounts_file, monkeypatch, caplog):
    # given: the file changed, then vanished between the look and the read (an editor saving by rename)
    write(accounts_file, WINDOW_A)
    before = get_accounts()
    accounts_file.unlink()
    monkeypatch.setattr(accounts_module, "_stamp", lambda path: (1, 2, 3))
    after_interval()
    # when
    with caplog.at_level(logging.ERROR, logger="msgrelay.accounts"):
        got = get_accounts()
    # then
    assert got is before and str(accounts_file) in caplog.text


def test_reload_zero_never_reads_again(accounts_file, monkeypatch):
    # given
    monkeypatch.setenv("MSGRELAY_ACCOUNTS_RELOAD_S", "0")
    reload_settings()
    write(accounts_file, WINDOW_A)
    assert window_of_promo() == Window.parse("08:00-21:00")
    # when
    write(accounts_file, WINDOW_B)
    after_interval()
    # then
    assert window_of_promo() == Window.parse("08:00-21:00")
    assert accounts_module.reload_accounts()["promo"].window_for("sms") == Window.parse("09:30-20:00")


@pytest.mark.parametrize("value, seconds", [(None, 2.0), ("0", 0.0), ("0.25", 0.25)])
def test_reload_setting(monkeypatch, value, seconds):  # the default, when no .env sets it
    try:
        if value is None:
            monkeypatch.delenv("MSGRELAY_ACCOUNTS_RELOAD_S", raising=False)
        else:
            monkeypatch.setenv("MSGRELAY_ACCOUNTS_RELOAD_S", value)
        assert reload_settings().accounts_reload_s == seconds
    finally:
        monkeypatch.undo()
        reload_settings()


def test_negative_reload_is_refused(monkeypatch):
    monkeypatch.setenv("MSGRELAY_ACCOUNTS_RELOAD_S", "-1")
    try:
        with pytest.raises(ValueError, match="accounts_reload_s"):
            reload_settings()
    finally:
        monkeypatch.undo()
        reload_settings()


def test_window_times_are_clock_values():
    assert parsed("qyxs_sms", 'send_window = "08:00:30-21:00"').window_for("sms") == Window(clock(8, 0, 30),
                                                                                           clock(21))
