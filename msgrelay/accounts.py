"""`accounts.toml`: one table per account, parsed into typed accounts whose repr masks secrets."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError, field_validator

from providers.errors import ConfigError


class _Account(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    base_url: str
    rate_limit: float | None = Field(default=None, gt=0, description="requests per second, across all workers")
    max_batch: int | None = Field(default=None, gt=0)
    poll_reports: bool = True
    callback_token: SecretStr | None = None
    # units one recipient costs at this provider; when set, a chunk the last known balance cannot cover pauses
    # its job before anything is sent (DESIGN §6.4). Unset: only the provider's own balance error pauses.
    balance_per_recipient: float | None = Field(default=None, gt=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class EmayAccount(_Account):
    """Emay voice, voice-SMS or international SMS credentials."""

    provider: Literal["emay_voice", "emay_voice_sms", "emay_ims"]
    app_id: str = Field(min_length=1)
    secret_key: SecretStr


class IhuyiAccount(_Account):
    """ihuyi MMS credentials."""

    provider: Literal["ihuyi_mms"]
    api_id: str = Field(min_length=1)
    api_key: SecretStr
    product_id: int
    mms_max_kb: int = Field(default=300, gt=0, description="size cap of one MMS (text + decoded media), in KB")


class QyxsAccount(_Account):
    """企业信使 SMS credentials."""

    provider: Literal["qyxs_sms"]
    userid: str
    account: str
    password: SecretStr
    check_content: bool = False


Account = Annotated[Union[EmayAccount, IhuyiAccount, QyxsAccount], Field(discriminator="provider")]
_adapter: TypeAdapter[Account] = TypeAdapter(Account)

PROVIDER_NAMES = ("emay_voice", "emay_voice_sms", "emay_ims", "ihuyi_mms", "qyxs_sms")


def parse_accounts(text: str, *, source: str = "accounts.toml") -> dict[str, Account]:
    """Parse the file's text; a bad file raises ConfigError naming file, account and field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    tables = data.get("accounts", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{source}: [accounts] must be a table of account tables")
    accounts: dict[str, Account] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: account '{name}': must be a table")
        if table.get("provider") not in PROVIDER_NAMES:
            raise ConfigError(
                f"{source}: account '{name}': field 'provider': must be one of {', '.join(PROVIDER_NAMES)}"
            )
        try:
            accounts[name] = _adapter.validate_python({**table, "name": name})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"][1:]) or "?"
            raise ConfigError(f"{source}: account '{name}': field '{where}': {err['msg']}") from None
    return accounts


def load_accounts(path: str | Path) -> dict[str, Account]:
    """Read and parse an accounts file; a missing file is an empty set of accounts."""
    path = Path(path)
    if not path.exists():
        return {}
    return parse_accounts(path.read_text(encoding="utf-8"), source=str(path))


_cache: dict[str, dict[str, Account]] = {}


def get_accounts() -> dict[str, Account]:
    """The accounts of the settings' accounts file, read once per process."""
    from msgrelay.settings import get_settings

    path = get_settings().accounts_file
    if path not in _cache:
        _cache[path] = load_accounts(path)
    return _cache[path]
