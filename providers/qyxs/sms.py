"""企业信使 SMS (document 003, badly scanned; DESIGN §5 settles its reading): form POSTs, XML answers.

`/sms.aspx` takes action=send | overage | checkkeyword; `/statusApi.aspx` and `/callApi.aspx` take
action=query for reports and inbound messages (each handed out once).  The platform ids a request
(`taskID`), not a recipient, so a recipient's provider id is ``f"{taskID}:{mobile}"``, the key its report
carries too.  Errors come as Chinese `message` texts; the credentials form, the XML answers and the
texts' error families are in ``providers.qyxs.common``.  The keyword check (`checkkeyword`) is a request like
any other: built and parsed here, sent by the flow.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from models.statuses import MessageStatus, Queue
from providers.base import (
    Accepted, Balance, ContentVerdict, HttpResponse, Inbound, KindSpec, Provider, Recipient, Report, Request,
    SendSpec, send_builder, send_parser, timeless_query,
)
from providers.common import StateMap, beijing_send_time, decimal_amount, require_flag, require_text
from providers.errors import AmbiguousError, PermanentError
from providers.qyxs.common import (
    ACTION_PATH, QyxsAccount, boxes, credentials_form, error_for_message, fields, parse_root, parse_time,
    raise_query_error, status_word,
)

SEND_PATH, REPORT_PATH, INBOUND_PATH = ACTION_PATH, "/statusApi.aspx", "/callApi.aspx"
MAX_PER_REQUEST = 1000  # DESIGN §3; resellers differ, so accounts lower it with max_batch
REPORT_PAGE = 500  # the document gives no page size; the simulator hands out 500 per query
# The document gives no content limit; this is our own bound (long SMS of ~15 segments).
CONTENT_MAX_CHARS = 1000

KINDS: Mapping[str, KindSpec] = {
    "sms": KindSpec(SEND_PATH, MAX_PER_REQUEST, Queue.BULK, frozenset({"checkcontent"}), CONTENT_MAX_CHARS),
}

#: report `status` → message status (10/20 per the document; DELIVRD/UNDELIV from other builds)
REPORT_STATES = StateMap({
    "10": MessageStatus.DELIVERED, "20": MessageStatus.FAILED,
    "DELIVRD": MessageStatus.DELIVERED, "UNDELIV": MessageStatus.FAILED,
})


def report_status(state: str) -> MessageStatus:
    """The message status of a report status (trimmed, any case)."""
    return REPORT_STATES(state.strip().upper())


def check_job(spec: SendSpec, recipients: Sequence[Recipient]) -> None:
    """What the platform refuses beyond the declared limits: a 0/1 checkcontent, a content."""
    require_flag(spec.options or {}, "checkcontent")
    require_text("content", spec.content)


def build_send_request(account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime) -> Request:
    """The `action=send` form for `batch` (its size checked by the base; mobiles comma-separated)."""
    flag = (spec.options or {}).get("checkcontent")
    check = str(flag) if flag is not None else ("1" if getattr(account, "check_content", False) else "0")
    return Request(path=SEND_PATH, form=credentials_form(
        account, "send", mobile=",".join(r.mobile for r in batch), content=str(spec.content),
        sendTime=beijing_send_time(spec.send_at, now) or "", checkcontent=check))


def parse_send_response(response: HttpResponse, batch: Sequence[Recipient]) -> list[Accepted]:
    """Every recipient of the batch under the answer's taskID, or the message's error family."""
    answer = fields(parse_root(response, sending=True))
    ok, message, task = status_word(answer.get("returnstatus", "")), answer.get("message", ""), answer.get("taskid")
    if ok is None and task:
        ok = True if message.lower() in ("ok", "") else None
    if ok is True:
        if not task:
            raise AmbiguousError("NO_TASKID", f"accepted without a taskID: {response.text[:80]!r}")
        return [Accepted(r.mobile, r.custom_id, f"{task}:{r.mobile}", task_id=task) for r in batch]
    if ok is None and not message:
        raise AmbiguousError("BAD_ANSWER", f"no returnstatus: {response.text[:80]!r}")
    raise error_for_message(message)


def build_query_request(account: Any, path: str) -> Request:
    """The `action=query` form of the report (/statusApi.aspx) or inbound (/callApi.aspx) query."""
    return Request(path=path, form=credentials_form(account, "query"))


def parse_report_response(response: HttpResponse) -> list[Report]:
    """The `<statusbox>` records of one report answer, keyed by taskid:mobile, or the error's family."""
    root = parse_root(response, sending=False)
    raise_query_error(root)
    reports = []
    for box in boxes(root, "statusbox"):
        state, task, mobile = box.get("status", ""), box.get("taskid", ""), box.get("mobile", "")
        reports.append(Report(
            status=report_status(state), state=state, desc=box.get("errorcode") or None,
            provider_msg_id=f"{task}:{mobile}" if task and mobile else None, custom_id=None,
            mobile=mobile or None, reported_at=parse_time(box.get("receivetime")), raw=box,
        ))
    return reports


def parse_inbound_response(response: HttpResponse) -> list[Inbound]:
    """The `<callbox>` records of one inbound answer, or the error's family."""
    root = parse_root(response, sending=False)
    raise_query_error(root)
    return [Inbound(mobile=box.get("mobile", ""), content=box.get("content", ""),
                    received_at=parse_time(box.get("receivetime")), task_id=box.get("taskid") or None, raw=box)
            for box in boxes(root, "callbox") if box.get("mobile")]


def build_balance_request(account: Any) -> Request:
    """The `action=overage` form."""
    return Request(path=SEND_PATH, form=credentials_form(account, "overage"))


def parse_balance_response(response: HttpResponse) -> list[Balance]:
    """`overage` (what can still be sent) as the figure, with payinfo, overage and sendTotal kept raw."""
    root = parse_root(response, sending=False)
    answer, raw = fields(root), fields(root, as_sent=True)
    if status_word(answer.get("returnstatus", "")) is False:
        raise error_for_message(answer.get("message", ""))
    overage = answer.get("overage", "")
    if not overage:
        return []  # a post-paid account (payinfo 后付费) has no balance to show
    return [Balance(amount=decimal_amount(overage, name="overage"), raw=raw)]


def build_check_request(account: Any, content: str) -> Request:
    """The `action=checkkeyword` form: does `content` contain forbidden keywords?"""
    return Request(path=ACTION_PATH, form=credentials_form(account, "checkkeyword", content=content))


def parse_check_response(response: HttpResponse) -> ContentVerdict:
    """未包含非法字符 → ok; 包含非法字符… → a hit with the platform's text; other texts → their family."""
    answer = fields(parse_root(response, sending=False))
    message = answer.get("message", "")
    if "未包含" in message:
        return ContentVerdict(True, message)
    if "包含" in message and "注入" not in message:
        return ContentVerdict(False, message)
    if not message and status_word(answer.get("returnstatus", "")) is True:
        return ContentVerdict(True, message)
    error = error_for_message(message)
    if isinstance(error, PermanentError):  # e.g. sql-injection characters: a verdict on the text too
        return ContentVerdict(False, message)
    raise error


class QyxsSms(Provider):
    """企业信使 SMS: kind `sms`, scheduled by the platform, reports and inbound polled."""

    name: ClassVar[str] = "qyxs_sms"
    account_type = QyxsAccount
    kinds: ClassVar[Mapping[str, KindSpec]] = KINDS
    unique_mobiles: ClassVar[bool] = True  # reports name a task and a mobile: two alike could not be told apart
    report_page_size: ClassVar[int] = REPORT_PAGE
    report_states: ClassVar[StateMap] = REPORT_STATES
    has_inbound_query: ClassVar[bool] = True
    has_content_check: ClassVar[bool] = True
    ids_name_requests: ClassVar[bool] = True  # taskID
    native_schedule: ClassVar[bool] = True  # sendTime carries the job's send_at

    check_job = staticmethod(check_job)
    build_send_request = send_builder(build_send_request)
    parse_send = send_parser(parse_send_response)
    parse_reports = staticmethod(parse_report_response)
    build_balance_query = timeless_query(build_balance_request)  # the overage query
    parse_balance = staticmethod(parse_balance_response)
    parse_inbound = staticmethod(parse_inbound_response)
    build_content_check = staticmethod(build_check_request)
    parse_content_check = staticmethod(parse_check_response)

    def wants_content_check(self, account: Any) -> bool:
        """With `check_content = true`, the platform's keyword check must pass before a job is accepted."""
        return bool(getattr(account, "check_content", False))

    def build_report_query(self, account: Any, now: datetime) -> Request:
        """The report query."""
        return build_query_request(account, REPORT_PATH)

    def build_inbound_query(self, account: Any, now: datetime) -> Request:
        """The inbound (上行) query."""
        return build_query_request(account, INBOUND_PATH)
