"""企业信使's keyword check (`/sms.aspx` action=checkkeyword): does a text contain forbidden words?

``build_check_request`` and ``parse_check_response`` are pure; ``check_content`` makes the one HTTP request.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from providers.base import HttpResponse, Request, http_send
from providers.errors import PermanentError
from providers.qyxs_errors import error_for_message
from providers.qyxs_form import ACTION_PATH, credentials_form
from providers.qyxs_xml import fields, parse_root, status_word

CHECK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class KeywordCheck:
    """The platform's verdict on a text: `ok`, and its own words (the hit text when not ok)."""

    ok: bool
    message: str


def build_check_request(account: Any, content: str) -> Request:
    """The `action=checkkeyword` form."""
    return Request(path=ACTION_PATH, form=credentials_form(account, "checkkeyword", content=content))


def parse_check_response(response: HttpResponse) -> KeywordCheck:
    """未包含非法字符 → ok; 包含非法字符… → a hit with the platform's text; other texts → their family."""
    answer = fields(parse_root(response, sending=False))
    message = answer.get("message", "")
    if "未包含" in message:
        return KeywordCheck(True, message)
    if "包含" in message and "注入" not in message:
        return KeywordCheck(False, message)
    if not message and status_word(answer.get("returnstatus", "")) is True:
        return KeywordCheck(True, message)
    error = error_for_message(message)
    if isinstance(error, PermanentError):  # e.g. sql-injection characters: a verdict on the text too
        return KeywordCheck(False, message)
    raise error


def check_content(account: Any, content: str, *, read_timeout_s: float = CHECK_TIMEOUT_S) -> KeywordCheck:
    """Ask the platform whether `content` contains forbidden keywords (one HTTP request)."""
    return parse_check_response(http_send(account.base_url, build_check_request(account, content),
                                          read_timeout_s=read_timeout_s))
