"""CLI commands of the 企业信使 SMS provider: `msgrelay check-content ACCOUNT TEXT`."""
from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from msgrelay.cli.startup import needs_accounts

# exit codes: 0 the text passed, 1 the platform found a forbidden keyword, 2 the check could not be made
EXIT_HIT, EXIT_ERROR = 1, 2


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main CLI."""

    @app.command("check-content")
    @needs_accounts
    def check_content(account: str = typer.Argument(..., metavar="ACCOUNT", help="A qyxs_sms account."),
                      text: str = typer.Argument(..., metavar="TEXT", help="The SMS text to check.")) -> None:
        """Ask 企业信使 whether TEXT contains forbidden keywords (exit 0: ok, 1: a hit, 2: an error)."""
        from msgrelay.accounts import get_accounts
        from providers.errors import InvalidInput, ProviderError
        from msgrelay.content_check import check_account_content
        out, err = Console(), Console(stderr=True)
        try:
            verdict = check_account_content(get_accounts(), account, text)
        except InvalidInput as exc:
            err.print(f"[red]error:[/red] {escape(exc.field)}: {escape(exc.rule)}")
            raise typer.Exit(EXIT_ERROR) from None
        except ProviderError as exc:  # the platform's code and text only: never the credentials
            err.print("[red]error:[/red] the platform did not check the content: "
                      f"{escape(exc.code)} {escape(exc.message)}")
            raise typer.Exit(EXIT_ERROR) from None
        if not verdict.ok:
            out.print(f"hit: {verdict.message}", markup=False)
            raise typer.Exit(EXIT_HIT)
        out.print(f"ok: {verdict.message or 'no forbidden keyword'}", markup=False)
