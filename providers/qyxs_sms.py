"""企业信使 SMS (document 003, badly scanned; DESIGN §5 settles its reading): form POSTs, XML answers.

`/sms.aspx` takes action=send | overage | checkkeyword; `/statusApi.aspx` and `/callApi.aspx` take
action=query for reports and inbound messages (each handed out once).  The platform ids a request
(`taskID`), not a recipient, so a recipient's provider id is ``f"{taskID}:{mobile}"``, the key its report
carries too.  Errors come as Chinese `message` texts, mapped to error families by ``MESSAGE_FAMILIES``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, ClassVar

from msgrelay.statuses import MessageStatus
from providers.base import (
    BEIJING, Accepted, Balance, HttpResponse, Inbound, KindSpec, Provider, Recipient, Report, Request, SendSpec,
    http_send,
)
from providers.emay_common import ErrorFactory
from providers.errors import AccountError, AmbiguousError, InvalidInput, PermanentError, ProviderError, TransientError
from providers.qyxs_xml import boxes, fields, parse_root, parse_time, query_error, status_word
from providers.validation import (
    require_flag, require_nonempty, require_text, shown, validate_custom_ids, validate_mainland_mobiles,
    validate_options,
)

SEND_PATH, REPORT_PATH, INBOUND_PATH = "/sms.aspx", "/statusApi.aspx", "/callApi.aspx"
MAX_PER_REQUEST = 1000  # DESIGN §3; resellers differ, so accounts lower it with max_batch
REPORT_PAGE = 500  # the document gives no page size; the simulator hands out 500 per query
# The document gives no content limit; this is our own bound (long SMS of ~15 segments).
CONTENT_MAX_CHARS = 1000
CUSTOM_ID_MAX_CHARS = 64  # our own ids only: the platform never sees them
CHECK_TIMEOUT_S = 10.0

KINDS: Mapping[str, KindSpec] = {"sms": KindSpec(SEND_PATH, MAX_PER_REQUEST, "bulk", frozenset({"checkcontent"}))}

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

#: report `status` → message status (10/20 per the document; DELIVRD/UNDELIV from other builds)
REPORT_STATES: Mapping[str, MessageStatus] = {
    "10": MessageStatus.DELIVERED, "20": MessageStatus.FAILED,
    "DELIVRD": MessageStatus.DELIVERED, "UNDELIV": MessageStatus.FAILED,
}
REPORT_STATE_FALLBACK = MessageStatus.UNKNOWN


@dataclass(frozen=True)
class KeywordCheck:
    """The platform's verdict on a text: `ok`, and its own words (the hit text when not ok)."""

    ok: bool
    message: str


def report_status(state: str) -> MessageStatus:
    """The message status of a (trimmed) report status."""
    return REPORT_STATES.get(state.strip().upper(), REPORT_STATE_FALLBACK)


def error_for_message(message: str) -> ProviderError:
    """The error family of a failure `message` (the platform's text is kept as the error's message)."""
    for needle, code, factory in MESSAGE_FAMILIES:
        if needle in message:
            return factory(code, message)
    code, factory = MESSAGE_FALLBACK
    return factory(code, message or "Faild without a message")


class Form(dict):
    """A form whose repr hides the password: the platform wants it in clear, logs and tracebacks must not."""

    def __repr__(self) -> str:
        return repr({k: ("**********" if k == "password" else v) for k, v in self.items()})


def credentials_form(account: Any, action: str, **extra: str) -> Form:
    """action, userid, account, password (in the document's order), then `extra`."""
    return Form(action=action, userid=account.userid, account=account.account,
                password=account.password.get_secret_value(), **extra)


def send_time(spec: SendSpec, now: datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS` Beijing time for a job due later; empty (send at once) otherwise."""
    if spec.send_at is None or spec.send_at <= now:
        return ""
    return spec.send_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


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
        sendTime=send_time(spec, now), checkcontent=check))


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


def _raise_query_error(root: Any) -> None:
    """The family of an `<errorstatus>` answer of a query."""
    found = query_error(root)
    if found is not None:
        code, factory = QUERY_ERRORS.get(found.error, (f"QYXS_QUERY_{found.error}"[:64], TransientError))
        raise factory(code, found.remark or f"error {found.error}")
    answer = fields(root)
    if status_word(answer.get("returnstatus", "")) is False:
        raise error_for_message(answer.get("message", ""))


def build_query_request(account: Any, path: str) -> Request:
    """The `action=query` form of the report (/statusApi.aspx) or inbound (/callApi.aspx) query."""
    return Request(path=path, form=credentials_form(account, "query"))


def parse_report_response(response: HttpResponse) -> list[Report]:
    """The `<statusbox>` records of one report answer, keyed by taskid:mobile, or the error's family."""
    root = parse_root(response, sending=False)
    _raise_query_error(root)
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
    _raise_query_error(root)
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
    try:
        amount = Decimal(overage)
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise TransientError("BAD_ANSWER", f"overage is not a number: {overage!r}") from None
    return [Balance(amount=amount, raw=raw)]


def build_check_request(account: Any, content: str) -> Request:
    """The `action=checkkeyword` form."""
    return Request(path=SEND_PATH, form=credentials_form(account, "checkkeyword", content=content))


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

    def validate(self, spec: SendSpec, recipients: Sequence[Recipient]) -> None:
        """Raise InvalidInput naming the field and rule."""
        validate_send(spec, recipients)

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

    def build_send(self, account: Any, spec: SendSpec, batch: Sequence[Recipient], now: datetime, *,
                   request_id: str | None = None) -> Request:
        """The request that sends `batch`."""
        return build_send_request(account, spec, batch, now)

    def parse_send(self, spec: SendSpec, batch: Sequence[Recipient], response: HttpResponse) -> list[Accepted]:
        """The accepted recipients, or the message's error family."""
        return parse_send_response(response, batch)

    def build_report_query(self, account: Any, now: datetime) -> Request:
        """The report query."""
        return build_query_request(account, REPORT_PATH)

    def parse_reports(self, response: HttpResponse) -> list[Report]:
        """The reports in one answer."""
        return parse_report_response(response)

    def build_balance_query(self, account: Any, now: datetime) -> Request:
        """The overage query."""
        return build_balance_request(account)

    def parse_balance(self, response: HttpResponse) -> list[Balance]:
        """The balance figure."""
        return parse_balance_response(response)

    def build_inbound_query(self, account: Any, now: datetime) -> Request:
        """The inbound (上行) query."""
        return build_query_request(account, INBOUND_PATH)

    def parse_inbound(self, response: HttpResponse) -> list[Inbound]:
        """The inbound messages in one answer."""
        return parse_inbound_response(response)
