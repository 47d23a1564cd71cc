"""The vendor registry: every accounts.toml provider is served by exactly one vendor, and its accounts load."""
from __future__ import annotations

import pytest
from pydantic import SecretStr

from providers.simulator import SimConfig, config_from_accounts, create_app
from providers.simulator.registry import VENDORS, vendor_serving

# one account of each provider name accounts.toml accepts, as plain mappings
ACCOUNTS = {
    "voice": {"provider": "emay_voice", "app_id": "EUCP-VOICE", "secret_key": "voice-key"},
    "vsms": {"provider": "emay_voice_sms", "app_id": "EUCP-JOIN", "secret_key": "join-key"},
    "ims": {"provider": "emay_ims", "app_id": "EUCP-IMS", "secret_key": "ims-key"},
    "mms": {"provider": "ihuyi_mms", "api_id": "2RYN7CQHL1M", "api_key": "mms-key", "product_id": 1020},
    "sms": {"provider": "qyxs_sms", "userid": "12", "account": "smsuser", "password": "sms-pass"},
}
PROVIDERS = ("emay_voice", "emay_voice_sms", "emay_ims", "ihuyi_mms", "qyxs_sms")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_is_served_by_exactly_one_vendor(provider: str) -> None:
    serving = [vendor.name for vendor in VENDORS if provider in vendor.providers]
    assert len(serving) == 1 and vendor_serving(provider).name == serving[0]


def test_registry_serves_nothing_else() -> None:
    assert sorted(p for vendor in VENDORS for p in vendor.providers) == sorted(PROVIDERS)
    assert vendor_serving("sendgrid") is None


def test_from_accounts_builds_every_vendors_credentials() -> None:
    config = config_from_accounts(ACCOUNTS, report_delay_s=0.1)

    emay, qyxs, ihuyi = (config.credentials[name] for name in ("emay", "qyxs", "ihuyi"))
    assert {k: (a.service, a.secret_key) for k, a in emay.items()} == {
        "EUCP-VOICE": ("voice", "voice-key"), "EUCP-JOIN": ("join", "join-key"), "EUCP-IMS": ("ims", "ims-key")}
    assert (qyxs["12"].account, qyxs["12"].password) == ("smsuser", "sms-pass")
    assert ihuyi["2RYN7CQHL1M"].api_key == "mms-key" and 1020 in ihuyi["2RYN7CQHL1M"].products
    assert set(config.balances()) == {"EUCP-VOICE", "EUCP-JOIN", "EUCP-IMS", "2RYN7CQHL1M", "12"}
    assert config.report_delay_s == 0.1
    for vendor in VENDORS:  # the attribute /_sim/secret rotates exists on each credential
        assert all(getattr(cred, vendor.secret_attr) for cred in config.credentials[vendor.name].values())
    assert not any(secret in repr(config) for secret in ("voice-key", "mms-key", "sms-pass"))


def test_from_accounts_unwraps_secret_strings_and_skips_unknown_providers() -> None:
    accounts = {"voice": {**ACCOUNTS["voice"], "secret_key": SecretStr("wrapped-key")},
                "mail": {"provider": "sendgrid", "api_key": "x"}}

    config = config_from_accounts(accounts)

    assert config.credentials == {"emay": {"EUCP-VOICE": config.credentials["emay"]["EUCP-VOICE"]}}
    assert config.credentials["emay"]["EUCP-VOICE"].secret_key == "wrapped-key"


def test_create_app_refuses_credentials_of_an_unknown_vendor() -> None:
    with pytest.raises(ValueError, match="sendgrid"):
        create_app(SimConfig(credentials={"sendgrid": {}}))
