"""Document 001's example appId, secret and clock, and the answer-code rows its tables 3.2 and 3.4 share:
the fixtures of the Emay voice, voice-SMS and push tests."""
from __future__ import annotations

from datetime import datetime, timezone

from providers.base import HttpResponse, Recipient
from providers.emay.common import EmayAccount
from providers.errors import AccountError, PermanentError, RecipientRejected, TransientError

APP_ID = "EUCP-EMY-DDDD-3EEEE"
SECRET = "0123456789abcdef"
NOW = datetime(2017, 1, 1, 4, 0, 0, tzinfo=timezone.utc)  # 2017-01-01 12:00:00 in Beijing
TS = "20170101120000"

# the rows 3.2 (voice) and 3.4 (voice-SMS) both give, word for word, with the family the design gives each code
SHARED_CODES = {
    "SUCCESS": ("提交成功", None),
    "ERROR_APPID": ("AppId 不存在", AccountError),
    "ERROR_PARAMS": ("请求参数错误", PermanentError),
    "ERROR_CLIENT_IP": ("不识别的 Ip", AccountError),
    "ERROR_TIMESTAMP": ("时间戳错误", TransientError),
    "ERROR_SIGN": ("签名错误", AccountError),
    "ERROR_MOBILE_EMPTY": ("手机号为空", PermanentError),
    "ERROR_MOBILE_NUMBER": ("号码数量过多", PermanentError),
    "ERROR_MOBILE_ERROR": ("手机号码错误", RecipientRejected),
    "ERROR_CONTENT_EMPTY": ("语音内容为空", PermanentError),
    "ERROR_LONG_CONTENT": ("语音内容过长", PermanentError),
}


def emay_account(name: str, provider: str) -> EmayAccount:
    """An account of `provider` with the document's appId and secret."""
    return EmayAccount(name=name, provider=provider, base_url="http://127.0.0.1:18080", app_id=APP_ID,
                       secret_key=SECRET)


def answer(text: str, status: int = 200) -> HttpResponse:
    """An HTTP answer with `text` as its body."""
    return HttpResponse(status=status, text=text)


def batch_of(n: int, tag: str) -> list[Recipient]:
    """`n` recipients 1800109890<i> whose custom ids are `tag`<i>."""
    return [Recipient(mobile=f"1800109890{i}", custom_id=f"{tag}{i}") for i in range(n)]
