"""accounts.toml and settings: typed accounts, masked secrets, errors naming file, account and field."""
from __future__ import annotations

import subprocess
import sys

import pytest

from msgrelay.accounts import load_accounts, parse_accounts
from providers.emay.common import EmayAccount
from providers.ihuyi.common import IhuyiAccount
from providers.qyxs.common import QyxsAccount
from providers.errors import ConfigError

GOOD = """
[accounts.voice]
provider = "emay_voice"
base_url = "http://127.0.0.1:18080/"
app_id = "EUCP-EMY-DDDD-3EEEE"
secret_key = "0123456789abcdef"
rate_limit = 5
callback_token = "tok-123"

[accounts.mms]
provider = "ihuyi_mms"
base_url = "http://127.0.0.1:18080"
api_id = "2RYN7CQHL1M"
api_key = "k-secret-9"
product_id = 1001

[accounts.sms]
provider = "qyxs_sms"
base_url = "http://127.0.0.1:18080"
userid = "12"
account = "user"
password = "p-secret-7"
"""


def test_accounts_are_typed_and_secrets_masked():
    accounts = parse_accounts(GOOD)
    assert isinstance(accounts["voice"], EmayAccount) and isinstance(accounts["mms"], IhuyiAccount)
    assert isinstance(accounts["sms"], QyxsAccount)
    assert accounts["voice"].base_url == "http://127.0.0.1:18080" and accounts["voice"].rate_limit == 5
    shown = repr(accounts) + str(accounts)
    for secret in ("0123456789abcdef", "tok-123", "k-secret-9", "p-secret-7"):
        assert secret not in shown
    assert accounts["voice"].secret_key.get_secret_value() == "0123456789abcdef"


@pytest.mark.parametrize("text, message", [
    ('[accounts.v]\nprovider = "emay_voice"\nbase_url = "http://x"\nsecret_key = "k"\n',
     "f.toml: account 'v': field 'app_id': Field required"),
    ('[accounts.v]\nprovider = "fax"\n', "f.toml: account 'v': field 'provider': must be one of"),
    ('[accounts.v]\nprovider = "emay_voice"\nbase_url = "ftp://x"\napp_id = "a"\nsecret_key = "k"\n',
     "f.toml: account 'v': field 'base_url'"),
    ('[accounts.v]\nprovider = "emay_voice"\nbase_url = "http://x"\napp_id = "a"\nsecret_key = "k"\nmax_batch = 0\n',
     "f.toml: account 'v': field 'max_batch'"),
    ('[accounts.v]\nprovider = "emay_voice"\nbase_url = "http://x"\napp_id = "a"\nsecret_key = "k"\ncolour = 1\n',
     "f.toml: account 'v': field 'colour': Extra inputs are not permitted"),
    ("[accounts.v\n", "f.toml: not valid TOML"),
])
def test_bad_file_names_file_account_and_field(text, message):
    with pytest.raises(ConfigError) as info:
        parse_accounts(text, source="f.toml")
    assert message in str(info.value)


def test_secret_values_never_in_config_errors():
    text = '[accounts.v]\nprovider = "emay_voice"\nbase_url = "http://x"\napp_id = "a"\nsecret_key = 12345678\n'
    with pytest.raises(ConfigError) as info:
        parse_accounts(text, source="f.toml")
    assert "12345678" not in str(info.value) and "secret_key" in str(info.value)


def test_missing_file_is_no_accounts(tmp_path):
    assert load_accounts(tmp_path / "none.toml") == {}


def test_send_refuses_to_start_on_a_bad_file(tmp_path):  # every entry point: tests/test_startup_config.py
    bad = tmp_path / "accounts.toml"
    bad.write_text('[accounts.v]\nprovider = "emay_voice"\nbase_url = "http://x"\n')
    out = subprocess.run([sys.executable, "-m", "msgrelay.cli", "send", "v", "notify", "--to", "13800000000"],
                         env={"MSGRELAY_ACCOUNTS_FILE": str(bad), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert f"{bad}: account 'v': field 'app_id'" in out.stderr.replace("\n", "")
