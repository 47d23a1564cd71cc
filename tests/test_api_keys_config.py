"""`[api_keys.NAME]` in accounts.toml (DESIGN §9 "API keys"): parsed beside the accounts and routes; a bad key is a
ConfigError naming the file, the key and the field, never the hash; keys are read again when the file changes."""
from __future__ import annotations

import hashlib
import os
import time

import pytest

from msgrelay.accounts import ApiKey, Role, api_keys_of, get_accounts, parse_accounts
from msgrelay.settings import get_settings
from providers.errors import ConfigError
from tests.api_helpers import environment

HASH = hashlib.sha256(b"a-token").hexdigest()
ACCOUNTS = """
[accounts.voice]
provider = "emay_voice"
base_url = "http://127.0.0.1:18080"
app_id = "EUCP-EMY-1"
secret_key = "k-voice"

[accounts.sms]
provider = "qyxs_sms"
base_url = "http://127.0.0.1:18080"
userid = "12"
account = "user"
password = "p-sms"
"""


def with_key(body: str, name: str = "k") -> str:
    """The accounts above and one `[api_keys.<name>]` table of `body`."""
    return f"{ACCOUNTS}\n[api_keys.{name}]\n{body}\n"


def test_keys_are_parsed_beside_the_accounts():
    # given
    text = (with_key(f'token_sha256 = "{HASH}"\nrole = "producer"\naccounts = ["voice", "sms"]', "p")
            + f'[api_keys.all]\ntoken_sha256 = "{"0" * 64}"\nrole = "viewer"\naccounts = ["*"]\n')
    # when
    accounts = parse_accounts(text, source="f.toml")
    # then
    assert set(accounts) == {"voice", "sms"}
    assert accounts.api_keys == {
        "p": ApiKey("p", HASH, Role.PRODUCER, frozenset({"voice", "sms"})),
        "all": ApiKey("all", "0" * 64, Role.VIEWER, None)}
    assert api_keys_of(accounts) is accounts.api_keys and api_keys_of({}) == {}
    assert HASH not in repr(accounts.api_keys["p"])


def test_an_upper_case_hash_is_the_same_hash():
    key = parse_accounts(with_key(f'token_sha256 = "{HASH.upper()}"\nrole = "operator"\naccounts = ["*"]'),
                         source="f.toml").api_keys["k"]
    assert key.token_sha256 == HASH


@pytest.mark.parametrize("body, field, rule", [
    ('role = "viewer"\naccounts = ["*"]', "token_sha256", "64 hex characters"),
    ('token_sha256 = "a-token"\nrole = "viewer"\naccounts = ["*"]', "token_sha256", "not the token"),
    (f'token_sha256 = "{HASH[:-1]}"\nrole = "viewer"\naccounts = ["*"]', "token_sha256", "64 hex characters"),
    (f'token_sha256 = "{HASH[:-1]}g"\nrole = "viewer"\naccounts = ["*"]', "token_sha256", "64 hex characters"),
    ('token_sha256 = 12\nrole = "viewer"\naccounts = ["*"]', "token_sha256", "64 hex characters"),
    (f'token_sha256 = "{HASH}"\naccounts = ["*"]', "role", "must be one of viewer, producer, operator"),
    (f'token_sha256 = "{HASH}"\nrole = "admin"\naccounts = ["*"]', "role", "must be one of viewer, producer, operator"),
    (f'token_sha256 = "{HASH}"\nrole = "Operator"\naccounts = ["*"]', "role", "must be one of"),
    (f'token_sha256 = "{HASH}"\nrole = "viewer"', "accounts", "a non-empty list of account names"),
    (f'token_sha256 = "{HASH}"\nrole = "viewer"\naccounts = []', "accounts", "a non-empty list"),
    (f'token_sha256 = "{HASH}"\nrole = "viewer"\naccounts = "*"', "accounts", "a non-empty list"),
    (f'token_sha256 = "{HASH}"\nrole = "viewer"\naccounts = [1]', "accounts", "a non-empty list"),
    (f'token_sha256 = "{HASH}"\nrole = "viewer"\naccounts = ["mms"]', "accounts", "no account 'mms' in this file"),
    (f'token_sha256 = "{HASH}"\nrole = "viewer"\naccounts = ["*", "voice"]', "accounts",
     '["*"] (every account) stands alone'),
    (f'token_sha256 = "{HASH}"\nrole = "viewer"\naccounts = ["*"]\ntoken = "a-token"', "token",
     "not an api key field"),
])
def test_a_bad_key_names_file_key_and_field(body, field, rule):
    with pytest.raises(ConfigError) as caught:
        parse_accounts(with_key(body), source="f.toml")
    text = str(caught.value)
    assert text.startswith("f.toml: api key 'k': ") and f"field '{field}'" in text and rule in text, text
    assert "a-token" not in text and HASH not in text


@pytest.mark.parametrize("text, words", [
    ("api_keys = 3\n" + ACCOUNTS, "[api_keys] must be a table of key tables"),
    (ACCOUNTS + '\n[api_keys]\nk = "x"\n', "api key 'k': must be a table"),
    (with_key(f'token_sha256 = "{HASH}"\nrole = "viewer"\naccounts = ["*"]', "a")
     + f'[api_keys.b]\ntoken_sha256 = "{HASH}"\nrole = "operator"\naccounts = ["*"]\n',
     "api key 'b': field 'token_sha256': the same as key 'a'"),
])
def test_a_bad_keys_table_is_named(text, words):
    with pytest.raises(ConfigError) as caught:
        parse_accounts(text, source="f.toml")
    assert words in str(caught.value) and HASH not in str(caught.value)


def test_keys_are_read_again_when_the_file_changes(tmp_path):
    # given a file without keys, read by this process
    path = tmp_path / "accounts.toml"
    path.write_text(ACCOUNTS, encoding="utf-8")
    with environment(MSGRELAY_ACCOUNTS_FILE=str(path), MSGRELAY_ACCOUNTS_RELOAD_S="0.01"):
        assert get_settings().accounts_reload_s == 0.01
        assert api_keys_of(get_accounts()) == {}
        # when a key is added
        path.write_text(with_key(f'token_sha256 = "{HASH}"\nrole = "viewer"\naccounts = ["voice"]'), encoding="utf-8")
        os.utime(path, ns=(time.time_ns() + 10**9,) * 2)
        time.sleep(0.05)
        # then it is known without a restart
        assert set(api_keys_of(get_accounts())) == {"k"}
