"""What the ihuyi modules share: the account, the signed public parameters, the answer codes, push records.

Every request is JSON carrying the public parameters api_id, timestamp (10-digit Unix seconds), request_id
and signature = md5("api_id=…&api_key=…&request_id=…&timestamp=…") in lowercase hex; api_key is signed,
never sent. The document lists no error code but "OK": the exact codes below are the simulator's
(docs/providers/ihuyi_mms.md); others go by keyword. ihuyi signs none of its pushes (the account's callback
token in the URL keeps strangers out); a push body is one JSON object, a list of them, or {"data": [...]}.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field, SecretStr

from providers.base import AccountBase, HttpResponse
from providers.common import loads
from providers.errors import (
    ErrorFactory, InvalidInput, PermanentError, ProviderError, RateLimited, RecipientRejected, TransientError,
    balance_error, credentials_error, unreadable,
)

OK = "OK"
DEFAULT_MAX_KB = 300  # the usual carrier limit for one MMS


class IhuyiAccount(AccountBase):
    """ihuyi MMS credentials."""

    provider: Literal["ihuyi_mms"]
    api_id: str = Field(min_length=1)
    api_key: SecretStr
    product_id: int
    mms_max_kb: int = Field(default=DEFAULT_MAX_KB, gt=0,
                            description="size cap of one MMS (text + decoded media), in KB")

#: answer code → error family (None: no error); the simulator's vocabulary, see the module docstring
CODE_FAMILIES: Mapping[str, ErrorFactory | None] = {
    OK: None,
    "ERROR_API_ID": credentials_error,
    "ERROR_SIGNATURE": credentials_error,
    "ERROR_CLIENT_IP": credentials_error,
    "ERROR_PRODUCT_ID": credentials_error,  # the account's product is not its own: an operator must fix it
    "ERROR_BALANCE": balance_error,
    "ERROR_TIMESTAMP": TransientError,  # clock skew: the retry carries a fresh timestamp
    "ERROR_OVER_SPEED": RateLimited,
    "ERROR_PHONE": RecipientRejected,  # one bad number refuses the request: the flow splits to isolate it
    **{code: PermanentError for code in ("ERROR_PARAMS", "ERROR_PHONE_NUMBER", "ERROR_SIGN_NAME", "ERROR_TITLE",
                                         "ERROR_CONTENT", "ERROR_TEMPLATE", "ERROR_SEND_TIME")},
}
#: for a code not listed: whole words in it → family, first match wins; nothing matches → TransientError,
#: which is safe here because every retry reuses the chunk's request_id
CODE_KEYWORDS: tuple[tuple[str, ErrorFactory], ...] = (
    ("BALANCE", balance_error), ("SIGNATURE", credentials_error), ("API_ID", credentials_error),
    ("APIID", credentials_error), ("AUTH", credentials_error), ("IP", credentials_error), ("TIMESTAMP", TransientError), ("SPEED", RateLimited),
    ("FREQUENCY", RateLimited), ("LIMIT", RateLimited), ("PHONE", PermanentError), ("MOBILE", PermanentError),
    ("CONTENT", PermanentError), ("TEMPLATE", PermanentError), ("PARAMS", PermanentError),
    ("PARAM", PermanentError),
)


def sign(api_id: str, api_key: str, request_id: str, timestamp: int | str) -> str:
    """md5 of the public parameters sorted by name as key=value joined by "&", 32 lowercase hex digits."""
    text = f"api_id={api_id}&api_key={api_key}&request_id={request_id}&timestamp={timestamp}"
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def unix_seconds(now: datetime) -> int:
    """`now` as 10-digit Unix seconds (a naive datetime is taken as UTC; the zone does not change it)."""
    return int((now if now.tzinfo else now.replace(tzinfo=timezone.utc)).timestamp())


def public_params(account: Any, now: datetime, request_id: str | None = None) -> dict[str, Any]:
    """api_id, timestamp, request_id (a fresh one when None) and signature; api_key only inside the md5."""
    request_id = request_id or uuid.uuid4().hex
    timestamp = unix_seconds(now)
    signature = sign(account.api_id, account.api_key.get_secret_value(), request_id, timestamp)
    return {"api_id": account.api_id, "timestamp": timestamp, "request_id": request_id, "signature": signature}


def error_for_code(code: str, message: str | None = None) -> ProviderError | None:
    """The error family of an answer code (None for OK); the message carries ihuyi's own words."""
    if code in CODE_FAMILIES:
        factory = CODE_FAMILIES[code]
    else:
        words = "_" + re.sub(r"[^A-Z0-9]+", "_", code.upper()).strip("_") + "_"
        factory = next((f for word, f in CODE_KEYWORDS if f"_{word}_" in words), TransientError)
    return None if factory is None else factory(code, message or "")


def checked_answer(response: HttpResponse, *, sending: bool) -> dict[str, Any]:
    """The JSON object of an answer whose code is OK; otherwise its error family. A send whose answer
    cannot be read is ambiguous (it may have been accepted); a query's is transient."""
    try:
        payload = loads(response.text)
    except (ValueError, TypeError):
        payload = None
    if not isinstance(payload, dict):
        if not 200 <= response.status < 300:  # refused in front of ihuyi (proxy 404, 400): nothing accepted
            raise TransientError(f"HTTP_{response.status}", "answer is not an ihuyi JSON object")
        raise unreadable("BAD_ANSWER", f"HTTP {response.status} answer is not a JSON object: {response.text[:80]!r}",
                         sending=sending)
    code = payload.get("code")
    if not isinstance(code, str) or not code.strip():
        raise unreadable("NO_CODE", f"answer has no 'code': {response.text[:80]!r}", sending=sending)
    error = error_for_code(code.strip(), payload.get("message"))
    if error is not None:
        raise error
    return payload


# --- push records ------------------------------------------------------------------------------------

def push_items(body: bytes, what: str) -> list[Mapping[str, Any]]:
    """The records of a push: one JSON object, a list of them, or {"data": [...]}; InvalidInput otherwise."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("body", f"a {what} push must be UTF-8 JSON") from None
    if isinstance(payload, Mapping) and isinstance(payload.get("data"), list):
        payload = payload["data"]
    items = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(item, Mapping) for item in items):
        raise InvalidInput("body", f"a {what} push must be a JSON object or a list of objects")
    return items


def text_field(item: Mapping[str, Any], key: str) -> str | None:
    """A record's field as trimmed text (a number is written as text); None when absent, blank, or neither
    text nor a number (an object or a list is no value a push carries)."""
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return None if str(value).strip() == "" else str(value).strip()


def required_field(item: Mapping[str, Any], key: str, what: str, index: int) -> str:
    """A record's field as trimmed text; InvalidInput naming `body[index].key` when absent or blank."""
    value = text_field(item, key)
    if value is None:
        raise InvalidInput(f"body[{index}].{key}", f"a {what} needs {key}")
    return value
