"""`msgrelay webhooks deliveries|retry|test URL` (DESIGN §9)."""
from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from models.statuses import DeliveryStatus
from msgrelay.cli.console import console, fail
from providers.errors import InvalidInput

webhooks_app = typer.Typer(help="Producer status webhooks: deliveries, retries, a signed test event.",
                           no_args_is_help=True)
STATUSES = ", ".join(DeliveryStatus)


@webhooks_app.command("deliveries")
def deliveries(status: Optional[str] = typer.Option(None, help=f"Only this status: {STATUSES}."),
               limit: int = typer.Option(50, min=1, max=1000)) -> None:
    """Webhook deliveries, newest first, with attempts and the last error."""
    from models import session_scope
    from msgrelay.webhooks.operations import list_deliveries
    if status is not None and status not in set(DeliveryStatus):
        fail(f"--status: {status!r} is not one of {STATUSES}")
    with session_scope() as session:
        rows = list_deliveries(session, status=DeliveryStatus(status) if status else None, limit=limit)
    table = Table("id", "receiver", "status", "events", "attempts", "last error", "next attempt")
    for d in rows:
        table.add_row(str(d["id"]), d["receiver_url"], d["status"], str(d["events"]), str(d["attempts"]),
                      d["last_error"] or "", d["next_attempt_at"] if d["status"] == DeliveryStatus.FAILING else "")
    console.print(table)


@webhooks_app.command("retry")
def retry(delivery_id: int) -> None:
    """Send a dead (or failing) delivery again now: same events, same ids, signed afresh."""
    from msgrelay import audit, operations
    try:
        d = operations.retry_delivery(delivery_id, by=audit.CLI)
    except InvalidInput as exc:
        fail(f"{exc.field}: {exc.rule}")
    console.print(f"delivery [bold]{d['id']}[/bold] ({d['events']} events to {d['receiver_url']}): {d['status']}; "
                  "the webhooks worker sends it within a few seconds")


@webhooks_app.command("test")
def test(url: str) -> None:
    """POST one signed sample event to URL and print what the receiver answered (exit 1 unless 2xx)."""
    from msgrelay.settings import get_settings
    from msgrelay.webhooks.operations import send_test
    try:
        answer = send_test(url, get_settings())
    except InvalidInput as exc:
        fail(f"{exc.field}: {exc.rule}")
    console.print(f"sent: {answer.body.decode()}", markup=False, highlight=False)
    if answer.ok:
        console.print(f"receiver answered {answer.status} (acknowledged): {answer.answer}", markup=False,
                      highlight=False)
        return
    console.print(f"receiver did not acknowledge: {answer.error}", markup=False, highlight=False)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `msgrelay webhooks …` to the main app."""
    app.add_typer(webhooks_app, name="webhooks")
