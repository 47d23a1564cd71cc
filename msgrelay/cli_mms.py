"""CLI commands of ihuyi MMS (template create, templates) — to be built."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main CLI."""
