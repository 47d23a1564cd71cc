"""The form every 企业信使 request posts: action and credentials first, in the document's order."""
from __future__ import annotations

from typing import Any

ACTION_PATH = "/sms.aspx"  # takes action=send | overage | checkkeyword


class Form(dict):
    """A form whose repr hides the password: the platform wants it in clear, logs and tracebacks must not."""

    def __repr__(self) -> str:
        return repr({k: ("**********" if k == "password" else v) for k, v in self.items()})


def credentials_form(account: Any, action: str, **extra: str) -> Form:
    """action, userid, account, password (in the document's order), then `extra`."""
    return Form(action=action, userid=account.userid, account=account.account,
                password=account.password.get_secret_value(), **extra)
