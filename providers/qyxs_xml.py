"""The XML answers of 企业信使 (document 003, as DESIGN §5 reads it), parsed with `defusedxml`.

Shapes (children of `<returnsms>`; tag names compared case-insensitively, text trimmed):
    send                          returnstatus, message, remainpoint, taskID, successCounts
    overage (balance)             returnstatus, message, payinfo, overage, sendTotal
    checkkeyword                  message
    statusApi.aspx (reports)      <statusbox> mobile, taskid, status, receivetime, errorcode </statusbox> …
    callApi.aspx (inbound)        <callbox> mobile, taskid, content, receivetime </callbox> …
    query errors                  <errorstatus> error, remark </errorstatus>
Nothing here does I/O; a body that is not XML is a TransientError (AmbiguousError for a send).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from providers.base import BEIJING, HttpResponse
from providers.errors import AmbiguousError, TransientError

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
        family = AmbiguousError if sending else TransientError
        raise family("BAD_ANSWER", f"HTTP {response.status}: not XML ({type(exc).__name__}): "
                                   f"{text[:80]!r}") from None


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
    text = (value or "").strip()
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=BEIJING)
        except ValueError:
            continue
    return None
