"""`msgrelay suppress add|remove|list` (DESIGN §9 "Sending policy"): the suppression list from the command line."""
from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from msgrelay.cli.console import console, fail
from msgrelay.cli.startup import needs_accounts
from providers.errors import InvalidInput

suppress_app = typer.Typer(help="The suppression list: mobiles later jobs reject (SUPPRESSED) without sending.",
                           no_args_is_help=True)
SCOPE_HELP = "An account name, or * (every account; quote it in a shell: '*')."
SOURCE = "cli"


def _scope_words(scope: str) -> str:
    """How a scope reads in a sentence."""
    return "every account (*)" if scope == "*" else f"account {scope}"


@suppress_app.command("add")
@needs_accounts  # the scope is checked against the configured accounts
def add(mobile: str, scope: Optional[str] = typer.Option(None, help=SCOPE_HELP + " Default: *."),
        reason: Optional[str] = typer.Option(None, help="Why (at most 255 characters); shown by `list`.")) -> None:
    """Suppress MOBILE; adding one that is listed already keeps the first entry and succeeds."""
    from msgrelay.accounts import get_accounts
    from msgrelay.policy import suppressions
    try:
        row, new = suppressions.add(get_accounts(), mobile, scope=scope, reason=reason, source=SOURCE, by=SOURCE)
    except InvalidInput as exc:
        fail(f"{exc.field}: {exc.rule}")
    where = _scope_words(row["scope"])
    if new:
        console.print(f"suppressed {row['mobile']} for {where}", markup=False, highlight=False)
        return
    since = f" since {row['created_at']}" + (f" ({row['reason']})" if row["reason"] else "")
    console.print(f"{row['mobile']} was already suppressed for {where}{since}; kept as it was", markup=False,
                  highlight=False)


@suppress_app.command("remove")
def remove(mobile: str, scope: Optional[str] = typer.Option(None, help=SCOPE_HELP + " Default: *.")) -> None:
    """Lift the suppression of MOBILE in one scope (exit 2 when it is not suppressed there)."""
    from msgrelay.policy import suppressions
    # no check of the scope against the accounts file: an account removed from it may leave suppressions behind
    try:
        suppressions.remove(mobile, scope=scope, by=SOURCE)
    except InvalidInput as exc:  # NotFound too: "mobile: … is not suppressed in scope …"
        fail(f"{exc.field}: {exc.rule}")
    console.print(f"{suppressions.key_of('mobile', mobile)} is no longer suppressed for {_scope_words(scope or '*')}",
                  markup=False, highlight=False)


@suppress_app.command("list")
def listed(scope: Optional[str] = typer.Option(None, help="Only this scope: " + SCOPE_HELP),
           mobile: Optional[str] = typer.Option(None, help="Only this mobile (any usual form)."),
           limit: int = typer.Option(100, min=1, max=1000)) -> None:
    """Suppressions, newest first."""
    from msgrelay.policy import suppressions
    try:
        rows = suppressions.listed(scope=scope, mobile=mobile, limit=limit)
    except InvalidInput as exc:
        fail(f"{exc.field}: {exc.rule}")
    table = Table("mobile", "scope", "reason", "source", "created at")
    for s in rows:
        table.add_row(s["mobile"], escape(s["scope"]), escape(s["reason"] or ""), s["source"], s["created_at"])
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `msgrelay suppress …` to the main app."""
    app.add_typer(suppress_app, name="suppress")
