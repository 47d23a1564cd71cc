"""CLI commands of ihuyi MMS: `msgrelay template create ACCOUNT …` and `msgrelay templates`."""
from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from msgrelay.cli.console import console, fail
from msgrelay.cli.frames import FRAME_HELP
from msgrelay.cli.startup import needs_accounts
from providers.errors import InvalidInput, ProviderError

template_app = typer.Typer(help="ihuyi MMS templates (created pending; ihuyi's audit push approves or rejects).",
                           no_args_is_help=True)




@template_app.command("create")
@needs_accounts
def create(account: str,
           title: str = typer.Option(..., "--title", help="The template's title (not shown in the MMS)."),
           frame: list[str] = typer.Option([], "--frame", help=FRAME_HELP),
           sign_name: str = typer.Option(..., "--sign-name", help="The MMS signature in 【】, e.g. 【互亿无线】."),
           purpose: Optional[str] = typer.Option(None, help="What the template is for (ihuyi's `purpose`).")) -> None:
    """Create an MMS template at ihuyi; it stays `pending` until the audit push."""
    from msgrelay.accounts import get_accounts
    from msgrelay.cli.frames import frames_from_cli
    from msgrelay.templates import create_template
    try:
        made = create_template(get_accounts(), account, title=title, content=frames_from_cli(frame),
                               sign_name=sign_name, purpose=purpose)
    except InvalidInput as exc:
        fail(f"{exc.field}: {exc.rule}")
    except ProviderError as exc:
        fail(f"ihuyi refused or could not be reached: {exc}")
    console.print(f"template [bold]{made['template_id']}[/bold] on {made['account']}: {made['status']} "
                        "(send with --option template_id=… once approved)")


def templates(account: Optional[str] = typer.Option(None, help="Only this account."),
              status: Optional[str] = typer.Option(None, help="pending, approved or rejected."),
              limit: int = typer.Option(50)) -> None:
    """MMS templates and their audit status, newest first."""
    from msgrelay.templates import list_templates
    try:
        rows = list_templates(account=account, status=status, limit=limit)
    except InvalidInput as exc:
        fail(f"{exc.field}: {exc.rule}")
    table = Table("account", "template", "title", "status", "audit message", "updated at")
    for row in rows:
        table.add_row(row["account"], row["template_id"], row["title"] or "", row["status"], row["message"] or "",
                      row["updated_at"])
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main CLI."""
    app.add_typer(template_app, name="template")
    app.command("templates")(templates)
