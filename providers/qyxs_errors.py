"""企业信使's failures as our error families: the Chinese `message` texts, and the query `<errorstatus>` codes.

The platform answers a failure with a text, not a code, so ``MESSAGE_FAMILIES`` picks the family by a
piece of the text (first match; the texts are the document's tables) and keeps the text as the message.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from providers.emay_common import ErrorFactory
from providers.errors import AccountError, PermanentError, ProviderError, TransientError
from providers.qyxs_xml import fields, query_error, status_word

_credentials: ErrorFactory = partial(AccountError, reason="credentials")
_balance: ErrorFactory = partial(AccountError, reason="balance")
#: (text found in `message`, our code, family), first match wins; texts from the document's tables
MESSAGE_FAMILIES: Sequence[tuple[str, str, ErrorFactory]] = (
    ("用户名或密码", "QYXS_AUTH", _credentials),  # 用户名或密码不能为空 / 用户名或密码错误
    ("帐号或密码", "QYXS_AUTH", _credentials),
    ("账号或密码", "QYXS_AUTH", _credentials),
    ("不允许", "QYXS_FORBIDDEN", _credentials),  # 该用户不允许…: the account lacks the right
    ("余额", "QYXS_BALANCE", _balance),  # 余额不足 / 您当前要发送的量大于您当前余额
    ("非法", "QYXS_ILLEGAL_CONTENT", PermanentError),  # 包含非法字符 (a keyword hit when checkcontent=1)
    ("注入", "QYXS_SQL_CHARS", PermanentError),  # 发送内容包含sql注入字符
    ("号码不能为空", "QYXS_NO_MOBILE", PermanentError),
    ("内容不能为空", "QYXS_NO_CONTENT", PermanentError),
)
MESSAGE_FALLBACK: tuple[str, ErrorFactory] = ("QYXS_ERROR", TransientError)  # 其他错误 (database) and the rest
#: `<errorstatus><error>` codes of the report and inbound queries
QUERY_ERRORS: Mapping[str, tuple[str, ErrorFactory]] = {
    "1": ("QYXS_AUTH", _credentials), "2": ("QYXS_AUTH", _credentials),
    "3": ("QYXS_FORBIDDEN", _credentials), "4": ("QYXS_PARAMS", PermanentError),
}


def error_for_message(message: str) -> ProviderError:
    """The error family of a failure `message` (the platform's text is kept as the error's message)."""
    for needle, code, factory in MESSAGE_FAMILIES:
        if needle in message:
            return factory(code, message)
    code, factory = MESSAGE_FALLBACK
    return factory(code, message or "Faild without a message")


def raise_query_error(root: Any) -> None:
    """The family of an `<errorstatus>` answer of a query (or of a failure `returnstatus`); else nothing."""
    found = query_error(root)
    if found is not None:
        code, factory = QUERY_ERRORS.get(found.error, (f"QYXS_QUERY_{found.error}"[:64], TransientError))
        raise factory(code, found.remark or f"error {found.error}")
    answer = fields(root)
    if status_word(answer.get("returnstatus", "")) is False:
        raise error_for_message(answer.get("message", ""))
