"""What the ihuyi MMS modules share: the signed public parameters and the answer codes.

Every request is JSON carrying the public parameters api_id, timestamp (10-digit Unix seconds), request_id
and signature = md5("api_id=…&api_key=…&request_id=…&timestamp=…") in lowercase hex; api_key is signed,
never sent. The document lists no error code but "OK": the exact codes below are the simulator's
(docs/providers/ihuyi_mms.md); others go by keyword.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import partial
from typing import Any

from providers.base import HttpResponse
from providers.errors import (
    AccountError, AmbiguousError, PermanentError, ProviderError, RateLimited, RecipientRejected, TransientError,
)

OK = "OK"

_credentials = partial(AccountError, reason="credentials")
_balance = partial(AccountError, reason="balance")
#: answer code → error family (None: no error); the simulator's vocabulary, see the module docstring
CODE_FAMILIES: Mapping[str, Any] = {
    OK: None,
    "ERROR_API_ID": _credentials,
    "ERROR_SIGNATURE": _credentials,
    "ERROR_CLIENT_IP": _credentials,
    "ERROR_PRODUCT_ID": _credentials,  # the account's product is not its own: an operator must fix it
    "ERROR_BALANCE": _balance,
    "ERROR_TIMESTAMP": TransientError,  # clock skew: the retry carries a fresh timestamp
    "ERROR_OVER_SPEED": RateLimited,
    "ERROR_PHONE": RecipientRejected,  # one bad number refuses the request: the flow splits to isolate it
    **{code: PermanentError for code in ("ERROR_PARAMS", "ERROR_PHONE_NUMBER", "ERROR_SIGN_NAME", "ERROR_TITLE",
                                         "ERROR_CONTENT", "ERROR_TEMPLATE", "ERROR_SEND_TIME")},
}
#: for a code not listed: whole words in it → family, first match wins; nothing matches → TransientError,
#: which is safe here because every retry reuses the chunk's request_id
CODE_KEYWORDS: tuple[tuple[str, Any], ...] = (
    ("BALANCE", _balance), ("SIGNATURE", _credentials), ("API_ID", _credentials), ("APIID", _credentials),
    ("AUTH", _credentials), ("IP", _credentials), ("TIMESTAMP", TransientError), ("SPEED", RateLimited),
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
        payload = json.loads(response.text)
    except (ValueError, TypeError):
        payload = None
    if not isinstance(payload, dict):
        if not 200 <= response.status < 300:  # refused in front of ihuyi (proxy 404, 400): nothing accepted
            raise TransientError(f"HTTP_{response.status}", "answer is not an ihuyi JSON object")
        family = AmbiguousError if sending else TransientError
        raise family("BAD_ANSWER", f"HTTP {response.status} answer is not a JSON object: {response.text[:80]!r}")
    code = payload.get("code")
    if not isinstance(code, str) or not code.strip():
        family = AmbiguousError if sending else TransientError
        raise family("NO_CODE", f"answer has no 'code': {response.text[:80]!r}")
    error = error_for_code(code.strip(), payload.get("message"))
    if error is not None:
        raise error
    return payload
