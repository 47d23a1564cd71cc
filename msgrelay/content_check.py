"""A provider's keyword check of a text (企业信使 `checkkeyword`): on demand, and before a job is accepted
when the account asks for it (`check_content = true`)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgrelay import metrics
from providers.base import ContentVerdict, Provider, SendSpec
from providers.common import require_text
from providers.errors import AccountError, InvalidInput, ProviderError
from providers.registry import provider_of

CHECK_TIMEOUT_S = 10.0


def check_content(account: Any, content: Any) -> ContentVerdict:
    """Ask the account's provider whether `content` holds forbidden words (one HTTP request); InvalidInput
    naming `account` or `content`, a ProviderError when the provider does not answer."""
    provider = provider_of(account)
    if not provider.has_content_check:
        raise InvalidInput("account", f"account {account.name!r} is {account.provider}: it has no content check")
    limits = [kind.content_max_chars for kind in provider.kinds.values() if kind.content_max_chars]
    text = require_text("content", content, max(limits) if limits else None)
    response = metrics.call(account.name, account.base_url, provider.build_content_check(account, text), sending=False,
                         read_timeout_s=CHECK_TIMEOUT_S)
    return provider.parse_content_check(response)


def check_account_content(accounts: Mapping[str, Any], name: str, content: Any) -> ContentVerdict:
    """check_content for the account called `name`; InvalidInput naming `account` when there is none."""
    account = accounts.get(name)
    if account is None:
        raise InvalidInput("account", f"unknown account {name!r}; known: {', '.join(sorted(accounts)) or 'none'}")
    return check_content(account, content)


def precheck_content(account: Any, provider: Provider, spec: SendSpec) -> None:
    """When the account wants it, the provider's keyword check must pass before the job is accepted."""
    if not provider.wants_content_check(account):
        return
    try:
        verdict = check_content(account, str(spec.content))
    except AccountError as exc:
        raise InvalidInput("account", f"the platform refused the account during the content check: "
                                      f"{exc.code} {exc.message}") from None
    except ProviderError as exc:
        raise InvalidInput("content", f"the platform's keyword check did not answer ({exc.code}); "
                                      "nothing was sent, try again") from None
    if not verdict.ok:
        raise InvalidInput("content", f"refused by the platform's keyword check: {verdict.message}")
