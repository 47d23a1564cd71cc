"""CLI commands of the 企业信使 SMS provider (check-content) — to be built."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main CLI."""
