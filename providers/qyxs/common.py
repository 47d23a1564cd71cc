"""What every 企业信使 request and answer shares (document 003, as DESIGN §5 reads it): the account, the
credentials form, the XML answers (parsed with `defusedxml`) and the failure texts mapped to error families.

Shapes (children of `<returnsms>`; tag names compared case-insensitively, text trimmed):
    send                          returnstatus, message, remainpoint, taskID, successCounts
    overage (balance)             returnstatus, message, payinfo, overage, sendTotal
    checkkeyword                  message
    statusApi.aspx (reports)      <statusbox> mobile, taskid, status, receivetime, errorcode </statusbox> …
    callApi.aspx (inbound)        <callbox> mobile, taskid, content, receivetime </callbox> …
    query errors                  <errorstatus> error, remark </errorstatus>
Nothing here does I/O; a body that is not XML is a TransientError (AmbiguousError for a send). The platform
answers a failure with a text, not a code, so ``MESSAGE_FAMILIES`` picks the family by a piece of the text
(first match; the texts are the document's tables) and keeps the text as the message.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from pydantic import SecretStr

from providers.base import AccountBase, HttpResponse
from providers.common import beijing_time
from providers.errors import (
    ErrorFactory, PermanentError, ProviderError, TransientError, balance_error, credentials_error, unreadable,
)

ACTION_PATH = "/sms.aspx"  # takes action=send | overage | checkkeyword


class QyxsAccount(AccountBase):
    """企业信使 SMS credentials."""

    provider: Literal["qyxs_sms"]
    userid: str
    account: str
    password: SecretStr
    check_content: bool = False


class Form(dict):
    """A form whose repr hides the password: the platform wants it in clear, logs and tracebacks must not."""

    def __repr__(self) -> str:
        return repr({k: ("**********" if k == "password" else v) for k, v in self.items()})


def credentials_form(account: Any, action: str, **extra: str) -> Form:
    """action, userid, account, password (in the document's order), then `extra`."""
    return Form(action=action, userid=account.userid, account=account.account,
                password=account.password.get_secret_value(), **extra)


# the platform spells success `Success` and, in some builds, `Sucess`; failure `Faild`
SUCCESS_WORDS = frozenset({"success", "sucess", "succeed", "ok"})
FAILURE_WORDS = frozenset({"faild", "failed", "fail", "failure", "error"})
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y/%m/%d %H:%M")


@dataclass(frozen=True)
class QueryError:
    """An `<errorstatus>` answer of the report or inbound query."""

    error: str
    remark: str


def _tag(element: Element) -> str:
    """The element's tag without a namespace, lowercased."""
    return element.tag.rsplit("}", 1)[-1].lower() if isinstance(element.tag, str) else ""


def parse_root(response: HttpResponse, *, sending: bool) -> Element:
    """The XML root of an answer; a non-XML body is AmbiguousError on a send, TransientError otherwise."""
    text = (response.text or "").lstrip("\ufeff").strip()
    try:
        if not text:
            raise ValueError("empty body")
        return SafeET.fromstring(text)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        if not 200 <= response.status < 300:
            raise TransientError(f"HTTP_{response.status}", "answer is not 企业信使 XML") from None
        raise unreadable("BAD_ANSWER", f"HTTP {response.status}: not XML ({type(exc).__name__}): {text[:80]!r}",
                         sending=sending) from None


def fields(element: Element, *, as_sent: bool = False) -> dict[str, str]:
    """The element's direct children as {lowercased tag: trimmed text} (an empty element gives "");
    `as_sent` keeps the tags' own spelling (for raw records: `sendTotal`, `taskID`)."""
    return {(child.tag if as_sent else _tag(child)): (child.text or "").strip() for child in element}


def boxes(root: Element, name: str) -> list[dict[str, str]]:
    """Every `<name>` record under the root (statusbox, callbox), each as its fields."""
    return [fields(el) for el in root.iter() if _tag(el) == name]


def query_error(root: Element) -> QueryError | None:
    """The `<errorstatus>` of a query answer, if it is one (the scan also shows `<corstatus>`)."""
    for el in root.iter():
        tag = _tag(el)
        if tag.endswith("status") and tag not in ("statusbox", "returnstatus", "status"):
            found = fields(el)
            if "error" in found:
                return QueryError(found["error"], found.get("remark", ""))
    return None


def status_word(value: str) -> bool | None:
    """True for the platform's success words, False for failure words, None for anything else."""
    word = value.strip().lower()
    if word in SUCCESS_WORDS:
        return True
    if word in FAILURE_WORDS:
        return False
    return None


def parse_time(value: str | None) -> datetime | None:
    """A Beijing-time timestamp as an aware datetime; None when absent or in no known format."""
    return beijing_time(value, TIME_FORMATS)


# --- failures as error families -------------------------------------------------------------------

#: (text found in `message`, our code, family), first match wins; texts from the document's tables
MESSAGE_FAMILIES: Sequence[tuple[str, str, ErrorFactory]] = (
    ("用户名或密码", "QYXS_AUTH", credentials_error),  # 用户名或密码不能为空 / 用户名或密码错误
    ("帐号或密码", "QYXS_AUTH", credentials_error),
    ("账号或密码", "QYXS_AUTH", credentials_error),
    ("不允许", "QYXS_FORBIDDEN", credentials_error),  # 该用户不允许…: the account lacks the right
    ("余额", "QYXS_BALANCE", balance_error),  # 余额不足 / 您当前要发送的量大于您当前余额
    ("非法", "QYXS_ILLEGAL_CONTENT", PermanentError),  # 包含非法字符 (a keyword hit when checkcontent=1)
    ("注入", "QYXS_SQL_CHARS", PermanentError),  # 发送内容包含sql注入字符
    ("号码不能为空", "QYXS_NO_MOBILE", PermanentError),
    ("内容不能为空", "QYXS_NO_CONTENT", PermanentError),
)
MESSAGE_FALLBACK: tuple[str, ErrorFactory] = ("QYXS_ERROR", TransientError)  # 其他错误 (database) and the rest
#: `<errorstatus><error>` codes of the report and inbound queries
QUERY_ERRORS: Mapping[str, tuple[str, ErrorFactory]] = {
    "1": ("QYXS_AUTH", credentials_error), "2": ("QYXS_AUTH", credentials_error),
    "3": ("QYXS_FORBIDDEN", credentials_error), "4": ("QYXS_PARAMS", PermanentError),
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
