"""企业信使 SMS (document 003, badly scanned; DESIGN §5 settles its reading): form POSTs, XML answers.

`/sms.aspx` takes action=send | overage | checkkeyword; `/statusApi.aspx` and `/callApi.aspx` take
action=query for reports and inbound messages (each handed out once).  The platform ids a request
(`taskID`), not a recipient, so a recipient's provider id is ``f"{taskID}:{mobile}"``, the key its report
carries too.  Errors come as Chinese `message` texts, mapped to error families by ``qyxs_errors``; the
keyword check is ``qyxs_keywords``, the credentials form ``qyxs_form``, the XML answers ``qyxs_xml``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from msgrelay.statuses import MessageStatus
from providers.base import (
    Accepted, Balance, HttpResponse, Inbound, KindSpec, Provider, Recipient, Report, Request, SendSpec, send_builder,
    send_parser, timeless_query,
)
from providers.errors import AccountError, AmbiguousError, InvalidInput, ProviderError
from providers.qyxs_errors import error_for_message, raise_query_error
from providers.qyxs_form import ACTION_PATH, credentials_form
from providers.qyxs_keywords import KeywordCheck, check_content
from providers.qyxs_xml import boxes, fields, parse_root, parse_time, status_word
from providers.validation import (
    require_flag, require_nonempty, require_text, shown, validate_custom_ids, validate_mainland_mobiles,
    validate_options,
)
from providers.wire_values import beijing_send_time, decimal_amount

SEND_PATH, REPORT_PATH, INBOUND_PATH = ACTION_PATH, "/statusApi.aspx", "/callApi.aspx"
MAX_PER_REQUEST = 1000  # DESIGN §3; resellers differ, so accounts lower it with max_batch
REPORT_PAGE = 500  # the document gives no page size; the simulator hands out 500 per query
# The document gives no content limit; this is our own bound (long SMS of ~15 segments).
CONTENT_MAX_CHARS = 1000
CUSTOM_ID_MAX_CHARS = 64  # our own ids only: the platform never sees them

KINDS: Mapping[str, KindSpec] = {"sms": KindSpec(SEND_PATH, MAX_PER_REQUEST, "bulk", frozenset({"checkcontent"}))}

#: report `status` → message status (10/20 per the document; DELIVRD/UNDELIV from other builds)
REPORT_STATES: Mapping[str, MessageStatus] = {
    "10": MessageStatus.DELIVERED, "20": MessageStatus.FAILED,
    "DELIVRD": MessageStatus.DELIVERED, "UNDELIV": MessageStatus.FAILED,
}
REPORT_STATE_FALLBACK = MessageStatus.UNKNOWN


def report_status(state: str) -> MessageStatus:
    """The message status of a (trimmed) report status."""
    return REPORT_STATES.get(state.strip().upper(), REPORT_STATE_FALLBACK)


def validate_send(spec: SendSpec, recipients: Sequence[Recipient]) -> None:
    """Refuse an SMS job the platform would refuse, naming the field and rule."""
    if spec.kind not in KINDS:
        raise InvalidInput("kind", f"qyxs_sms sends kind sms, got {shown(spec.kind)}")
    options = spec.options or {}
    validate_options(spec.kind, options, KINDS["sms"].options)
    require_flag(options, "checkcontent")
    require_text("content", spec.content, CONTENT_MAX_CHARS)
    require_nonempty(recipients)
    validate_mainland_mobiles(recipients)
    seen: set[str] = set()
    for i, recipient in enumerate(recipients):
        if recipient.content is not None:
            raise InvalidInput(f"recipients[{i}].content", "sms sends the job's content to everyone")
        if recipient.mobile in seen:  # reports name a task and a mobile: two alike could not be told apart
            raise InvalidInput(f"recipients[{i}].mobile", f"{recipient.mobile} is listed twice in this job")
        seen.add(recipient.mobile)
    validate_custom_ids(recipients, CUSTOM_ID_MAX_CHARS)


def build_send_request(account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime,
                       limit: int = MAX_PER_REQUEST) -> Request:
    """The `action=send` form for `batch` (1 to `limit` mobiles, comma-separated)."""
    if not 0 < len(batch) <= limit:
        raise ValueError(f"sms sends 1 to {limit} recipients per request, got {len(batch)}")
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


def check_account_content(accounts: Mapping[str, Any], name: str, content: Any) -> KeywordCheck:
    """check_content for the account called `name`; InvalidInput naming `account` or `content`."""
    account = accounts.get(name)
    if account is None:
        raise InvalidInput("account", f"unknown account {name!r}; known: {', '.join(sorted(accounts)) or 'none'}")
    if getattr(account, "provider", None) != "qyxs_sms":
        raise InvalidInput("account", f"account {name!r} is {account.provider}: only qyxs_sms checks content")
    return check_content(account, require_text("content", content, CONTENT_MAX_CHARS))


class QyxsSms(Provider):
    """企业信使 SMS: kind `sms`, scheduled by the platform, reports and inbound polled."""

    name: ClassVar[str] = "qyxs_sms"
    kinds: ClassVar[Mapping[str, KindSpec]] = KINDS
    max_recipients_per_request: ClassVar[int] = MAX_PER_REQUEST
    content_max_chars: ClassVar[int] = CONTENT_MAX_CHARS
    report_page_size: ClassVar[int] = REPORT_PAGE
    has_inbound_query: ClassVar[bool] = True
    native_schedule: ClassVar[bool] = True  # sendTime carries the job's send_at

    validate = staticmethod(validate_send)
    build_send = send_builder(build_send_request)
    parse_send = send_parser(parse_send_response)
    parse_reports = staticmethod(parse_report_response)
    build_balance_query = timeless_query(build_balance_request)  # the overage query
    parse_balance = staticmethod(parse_balance_response)
    parse_inbound = staticmethod(parse_inbound_response)

    def precheck(self, account: Any, spec: SendSpec) -> None:
        """With `check_content = true`, the platform's keyword check must pass before the job is accepted."""
        if not getattr(account, "check_content", False):
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

    def build_report_query(self, account: Any, now: datetime) -> Request:
        """The report query."""
        return build_query_request(account, REPORT_PATH)

    def build_inbound_query(self, account: Any, now: datetime) -> Request:
        """The inbound (上行) query."""
        return build_query_request(account, INBOUND_PATH)
