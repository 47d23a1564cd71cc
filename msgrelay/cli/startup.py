"""Start-up check: a command that reads accounts.toml refuses to start on a bad one (DESIGN §2)."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from msgrelay.cli.console import fail

P = ParamSpec("P")
R = TypeVar("R")


def accounts_problem() -> str | None:
    """Why the accounts file cannot be used (file, account and field; never a value), or None when it can."""
    from msgrelay.accounts import get_accounts
    from providers.errors import ConfigError

    try:
        get_accounts()
    except ConfigError as exc:  # also an unreadable or non-UTF-8 file, said without quoting its bytes
        return str(exc)
    return None


def check_accounts() -> None:
    """Load the accounts file now; on a bad one print what is wrong and where on stderr and exit 2."""
    if problem := accounts_problem():
        fail(f"config: {problem}")


def needs_accounts(command: Callable[P, R]) -> Callable[P, R]:
    """Mark a command as reading the accounts: they are loaded and checked before it starts anything."""

    @functools.wraps(command)  # Typer reads the options from the wrapped signature
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        check_accounts()
        return command(*args, **kwargs)

    checked.needs_accounts = True  # type: ignore[attr-defined]  # read by the completeness test
    return checked
