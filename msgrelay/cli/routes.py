"""`msgrelay routes [list]|resume ACCOUNT` (DESIGN §9 "Routes"): each route's accounts and their health, and
resuming an account that was paused for balance, credentials or client IP."""
from __future__ import annotations

from datetime import datetime, timezone

import typer
from rich.markup import escape
from rich.table import Table

from msgrelay.cli.console import console, fail
from msgrelay.cli.startup import needs_accounts
from providers.errors import InvalidInput

routes_app = typer.Typer(help="Routes across accounts: each account's health, and resuming a paused one. "
                              "Without a command: the same as `list`.", invoke_without_command=True)


@routes_app.callback()
def routes(ctx: typer.Context) -> None:
    """Routes across accounts (without a command: list them)."""
    if ctx.invoked_subcommand is None:
        listed()


@routes_app.command("list")
@needs_accounts
def listed() -> None:
    """Every route and its accounts in order: weight, health, why paused and since when, last known balance."""
    from msgrelay.accounts import get_accounts
    from models.statuses import AccountHealth
    from msgrelay.routes.view import route_views
    views = route_views(get_accounts())
    if not views:
        console.print("no routes configured (add [routes.NAME] tables to accounts.toml)", markup=False,
                      highlight=False)
        return
    table = Table("route", "mode", "account", "weight", "health", "reason", "since", "last balance")
    for route in views:
        for a in route["accounts"]:
            balance = a["balance"]
            table.add_row(escape(route["name"]), route["mode"], escape(a["name"]),
                          str(a["weight"]) if route["mode"] == "weighted" else "",
                          f"[red]{a['health']}[/red]" if a["health"] == AccountHealth.PAUSED else a["health"],
                          escape(a["paused_reason"] or ""), _when(a["paused_since"]),
                          f"{balance['value']} at {_when(balance['taken_at'])}" if balance else "")
    console.print(table)


def _when(iso: str | None) -> str:
    """An ISO time as a table shows it: to the second, in UTC (stored times without a zone are UTC)."""
    if iso is None:
        return ""
    when = datetime.fromisoformat(iso)
    when = when.astimezone(timezone.utc) if when.tzinfo else when
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


@routes_app.command("resume")
@needs_accounts  # the account is checked against the configured ones
def resume(account: str) -> None:
    """Lift ACCOUNT's pause (its balance, credentials or client IP fixed): its routes send through it again."""
    from msgrelay.accounts import get_accounts
    from msgrelay.audit import CLI
    from msgrelay.routes.view import resume_account
    try:
        resumed = resume_account(get_accounts(), account, by=CLI)
    except InvalidInput as exc:  # NotFound: "account: no account 'x' is configured"
        fail(f"{exc.field}: {exc.rule}")
    message = (f"account {account} resumed: its routes send through it again" if resumed
               else f"account {account} was not paused; nothing to resume")
    console.print(message, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add `msgrelay routes …` to the main app."""
    app.add_typer(routes_app, name="routes")
