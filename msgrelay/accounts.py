"""`accounts.toml`: one table per account, parsed into the provider's own account type (its repr masks secrets)."""
from __future__ import annotations

import logging
import os
import re
import time
import tomllib
from dataclasses import dataclass
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from msgrelay.routes.config import Route, parse_routes
from providers.errors import ConfigError
from providers.registry import PROVIDER_NAMES, Account, get_provider

__all__ = ["Account", "Accounts", "ApiKey", "Role", "api_keys_of", "get_accounts", "load_accounts", "parse_accounts"]
_adapter: TypeAdapter[Any] = TypeAdapter(Account)
log = logging.getLogger(__name__)


class Role(StrEnum):
    """What an API key may do (DESIGN §9 "API keys"): a viewer reads; a producer submits and reads its accounts'
    jobs; an operator may also pause, resume, cancel, change suppressions, retry webhooks and resume accounts."""

    VIEWER = "viewer"
    PRODUCER = "producer"
    OPERATOR = "operator"


#: `accounts = ["*"]`: every account, those added to the file later too
EVERY_ACCOUNT = "*"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ApiKey:
    """`[api_keys.NAME]`: the SHA-256 of its bearer token (never the token), its role, and its accounts (None:
    every account)."""

    name: str
    token_sha256: str
    role: Role
    accounts: frozenset[str] | None

    def __repr__(self) -> str:  # the hash stays out of logs too: it is all an offline guess needs
        return f"ApiKey(name={self.name!r}, role={self.role.value!r}, accounts={self.accounts!r})"


class Accounts(dict[str, Account]):
    """The accounts of a file by name, and its routes (`routes`) and API keys (`api_keys`), by name, beside them."""

    routes: dict[str, Route]
    api_keys: dict[str, ApiKey]

    def __init__(self, accounts: dict[str, Account] | None = None, routes: dict[str, Route] | None = None,
                 api_keys: dict[str, ApiKey] | None = None) -> None:
        super().__init__(accounts or {})
        self.routes = routes or {}
        self.api_keys = api_keys or {}


def routes_of(accounts: Mapping[str, Account]) -> dict[str, Route]:
    """The routes beside these accounts (none for a plain mapping)."""
    return getattr(accounts, "routes", {})


def api_keys_of(accounts: Mapping[str, Account]) -> dict[str, ApiKey]:
    """The API keys beside these accounts (none for a plain mapping)."""
    return getattr(accounts, "api_keys", {})


def parse_api_keys(tables: Any, accounts: Mapping[str, Any], source: str) -> dict[str, ApiKey]:
    """The `[api_keys.NAME]` tables; ConfigError naming the file, the key and the field (never a value)."""
    if not isinstance(tables, dict):
        raise ConfigError(f"{source}: [api_keys] must be a table of key tables")
    keys = {name: _api_key(name, table, accounts, f"{source}: api key '{name}'") for name, table in tables.items()}
    seen: dict[str, str] = {}
    for key in keys.values():
        if key.token_sha256 in seen:
            raise ConfigError(f"{source}: api key '{key.name}': field 'token_sha256': the same as key "
                              f"'{seen[key.token_sha256]}' (one token, one key)")
        seen[key.token_sha256] = key.name
    return keys


def _api_key(name: str, table: Any, accounts: Mapping[str, Any], where: str) -> ApiKey:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = set(table) - {"token_sha256", "role", "accounts"}
    if unknown:
        raise ConfigError(f"{where}: field '{sorted(unknown)[0]}': not an api key field (token_sha256, role, "
                          "accounts)")
    digest = table.get("token_sha256")
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest.lower()):
        raise ConfigError(f"{where}: field 'token_sha256': must be the token's SHA-256 as 64 hex characters "
                          "(sha256sum, or hashlib.sha256(token.encode()).hexdigest()), not the token")
    role = table.get("role")
    if role not in tuple(Role):
        raise ConfigError(f"{where}: field 'role': must be one of {', '.join(Role)}")
    names = table.get("accounts")
    if not isinstance(names, list) or not names or not all(isinstance(a, str) for a in names):
        raise ConfigError(f"{where}: field 'accounts': must be a non-empty list of account names, or [\"*\"]")
    if EVERY_ACCOUNT in names:
        if len(names) > 1:
            raise ConfigError(f"{where}: field 'accounts': [\"*\"] (every account) stands alone")
        return ApiKey(name, digest.lower(), Role(role), None)
    for account in names:
        if account not in accounts:
            raise ConfigError(f"{where}: field 'accounts': no account '{account}' in this file")
    return ApiKey(name, digest.lower(), Role(role), frozenset(names))


def parse_accounts(text: str, *, source: str = "accounts.toml") -> Accounts:
    """Parse the file's text (accounts, routes, API keys); a bad file raises ConfigError naming file, account (or
    route, or key) and field."""
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
        kinds = get_provider(accounts[name].provider).kinds
        for kind in accounts[name].send_windows:
            if kind not in kinds:
                raise ConfigError(f"{source}: account '{name}': field 'send_windows.{kind}': {accounts[name].provider} "
                                  f"sends kinds {', '.join(kinds)}")
    return Accounts(accounts, parse_routes(data.get("routes", {}), accounts, source),
                    parse_api_keys(data.get("api_keys", {}), accounts, source))


def load_accounts(path: str | Path, *, missing_ok: bool = True) -> Accounts:
    """Read and parse an accounts file; a missing file is an empty set of accounts (ConfigError if not `missing_ok`)."""
    path = Path(path)
    if missing_ok and not path.exists():
        return Accounts()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    return parse_accounts(text, source=str(path))


@dataclass
class _Read:
    """One process's accounts of one file, the file's stamp when read, and when it was last looked at."""

    accounts: dict[str, Account]
    stamp: tuple[int, int, int] | None
    looked_at: float


_cache: dict[str, _Read] = {}


def _stamp(path: str) -> tuple[int, int, int] | None:
    """What changes when the file is written or replaced (None: it is not there)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def get_accounts() -> dict[str, Account]:
    """The accounts of the settings' accounts file. Read once per process, then read again when the file changes
    (looked at every `accounts_reload_s`): an edited window, cap or credential reaches running workers without a
    restart. A broken edit is logged and the accounts read before stay in use."""
    from msgrelay.settings import get_settings

    settings = get_settings()
    path = settings.accounts_file
    read = _cache.get(path)
    if read is None:
        stamp = _stamp(path)
        _cache[path] = read = _Read(load_accounts(path), stamp, time.monotonic())
        return read.accounts
    if settings.accounts_reload_s > 0 and time.monotonic() - read.looked_at >= settings.accounts_reload_s:
        read.looked_at = time.monotonic()
        stamp = _stamp(path)
        if stamp is not None and stamp != read.stamp:
            read.stamp = stamp  # taken before reading: a write during the read makes the next look read again
            try:
                # gone since it was looked at (an editor saving by rename): keep the accounts, as for a deleted file
                accounts = load_accounts(path, missing_ok=False)
            except ConfigError as exc:
                log.error("%s; the accounts read before stay in use", exc)
                return read.accounts
            if not accounts and read.accounts:  # caught between truncating and writing: look again next time
                read.stamp = None
                log.warning("%s holds no accounts now; the accounts read before stay in use", path)
            else:
                read.accounts = accounts
                log.info("%s changed: accounts read again", path)
    return read.accounts


def reload_accounts() -> dict[str, Account]:
    """Read the settings' accounts file again and make it this process's accounts (ConfigError when bad)."""
    from msgrelay.settings import get_settings

    path = get_settings().accounts_file
    stamp = _stamp(path)
    _cache[path] = _Read(load_accounts(path), stamp, time.monotonic())
    return _cache[path].accounts
