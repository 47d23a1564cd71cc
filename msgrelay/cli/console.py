"""Where the CLI prints: stdout (wide enough for tables in a file or a pipe), stderr, and the one way to fail."""
from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

console = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True)
EXIT_USAGE = 2


def print_error(message: str) -> None:
    """Print `error: message` on stderr."""
    # soft_wrap: never fold a long file path or name across lines (people and scripts search for them)
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Print `error: message` on stderr and exit with `code` (2: bad input or configuration)."""
    print_error(message)
    raise typer.Exit(code)
