"""`accounts.toml`: one table per account, parsed into the provider's own account type (its repr masks secrets)."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from providers.errors import ConfigError
from providers.registry import PROVIDER_NAMES, Account

__all__ = ["Account", "get_accounts", "load_accounts", "parse_accounts"]
_adapter: TypeAdapter[Any] = TypeAdapter(Account)


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
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    return parse_accounts(text, source=str(path))


_cache: dict[str, dict[str, Account]] = {}


def get_accounts() -> dict[str, Account]:
    """The accounts of the settings' accounts file, read once per process."""
    from msgrelay.settings import get_settings

    path = get_settings().accounts_file
    if path not in _cache:
        _cache[path] = load_accounts(path)
    return _cache[path]


def reload_accounts() -> dict[str, Account]:
    """Read the settings' accounts file again and make it this process's accounts (ConfigError when bad)."""
    from msgrelay.settings import get_settings

    path = get_settings().accounts_file
    _cache[path] = load_accounts(path)
    return _cache[path]
