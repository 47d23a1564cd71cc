"""`[routes.NAME]` in accounts.toml: an ordered failover or a weighted split over accounts of one provider."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from providers.errors import ConfigError
from providers.registry import get_provider

MODES = ("failover", "weighted")


@dataclass(frozen=True)
class Route:
    """A route: its accounts in order and, for `weighted`, their weights."""

    name: str
    accounts: tuple[str, ...]
    mode: str = "failover"
    weights: tuple[int, ...] = ()

    def kinds(self, accounts: Mapping[str, Any]) -> frozenset[str]:
        """The kinds every account of the route can send."""
        sets = [frozenset(get_provider(accounts[a].provider).kinds) for a in self.accounts]
        return frozenset.intersection(*sets)

    def weight(self, account: str) -> int:
        """The account's weight (1 for every account of a failover route)."""
        return self.weights[self.accounts.index(account)] if self.weights else 1


def parse_routes(tables: Any, accounts: Mapping[str, Any], source: str) -> dict[str, Route]:
    """The routes of the file; ConfigError naming the file, the route and the field (or the account)."""
    if not isinstance(tables, dict):
        raise ConfigError(f"{source}: [routes] must be a table of route tables")
    return {name: _route(name, table, accounts, f"{source}: route '{name}'") for name, table in tables.items()}


def _route(name: str, table: Any, accounts: Mapping[str, Any], where: str) -> Route:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = set(table) - {"accounts", "mode", "weights"}
    if unknown:
        raise ConfigError(f"{where}: field '{sorted(unknown)[0]}': not a route field (accounts, mode, weights)")
    names = table.get("accounts")
    if not isinstance(names, list) or not names or not all(isinstance(a, str) for a in names):
        raise ConfigError(f"{where}: field 'accounts': must be a non-empty list of account names")
    for account in names:
        if account not in accounts:
            raise ConfigError(f"{where}: field 'accounts': no account '{account}' in this file")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: field 'accounts': an account is listed twice")
    mode = table.get("mode", "failover")
    if mode not in MODES:
        raise ConfigError(f"{where}: field 'mode': must be failover or weighted, got {mode!r}")
    weights = table.get("weights")
    if mode == "weighted":
        if (not isinstance(weights, list) or len(weights) != len(names)
                or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in weights)):
            raise ConfigError(f"{where}: field 'weights': a weighted route needs one positive integer per account "
                              f"({len(names)})")
    elif weights is not None:
        raise ConfigError(f"{where}: field 'weights': only a weighted route has weights (mode = \"weighted\")")
    route = Route(name, tuple(names), mode, tuple(weights or ()))
    first = accounts[names[0]]
    for account in names[1:]:
        if not route.kinds(accounts) or accounts[account].provider != first.provider:
            raise ConfigError(f"{where}: account '{account}' ({accounts[account].provider}) cannot send what account "
                              f"'{names[0]}' ({first.provider}) sends: a route's accounts must send the same kinds")
    return route
