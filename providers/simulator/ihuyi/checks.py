"""The simulated ihuyi MMS's request checks (document 002): public parameters, frames, title, sign, send time.

Each check refuses with one of CODES by raising Refused; the document names no error code but "OK", so the
codes are ours. Nothing here is shared with the client modules: the simulator reads the document
independently.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections import Counter
from datetime import datetime
from typing import Any

from providers.simulator.config import SimConfig
from providers.simulator.ihuyi.state import ihuyi_apps

MOBILE = re.compile(r"1[3-9][0-9]{9}")
SIGN_NAME = re.compile(r"【[^【】]+】")
EXTS = {"image": ("jpg", "jpeg", "png", "gif"), "audio": ("mp3",), "video": ("mp4",)}
MAGIC = {"jpg": (0, b"\xff\xd8\xff"), "jpeg": (0, b"\xff\xd8\xff"), "png": (0, b"\x89PNG\r\n\x1a\n"),
         "gif": (0, b"GIF8"), "mp4": (4, b"ftyp")}
CODES = {"OK": "提交成功", "ERROR_PARAMS": "参数错误", "ERROR_API_ID": "api_id不存在", "ERROR_TIMESTAMP": "时间戳错误",
         "ERROR_SIGNATURE": "签名错误", "ERROR_OVER_SPEED": "请求过快", "ERROR_PRODUCT_ID": "产品不存在",
         "ERROR_PHONE_NUMBER": "号码数量错误", "ERROR_PHONE": "手机号码错误", "ERROR_CONTENT": "彩信内容错误",
         "ERROR_TITLE": "标题错误", "ERROR_SIGN_NAME": "彩信签名错误", "ERROR_TEMPLATE": "模板不存在或未审核通过",
         "ERROR_SEND_TIME": "定时时间格式错误", "ERROR_BALANCE": "余额不足"}


class Refused(Exception):
    """A request answered with one of CODES."""


def require(ok: Any, code: str) -> None:
    """Refuse with `code` unless `ok`."""
    if not ok:
        raise Refused(code)


def signature(api_id: str, api_key: str, request_id: str, timestamp: Any) -> str:
    """2: md5("api_id=…&api_key=…&request_id=…&timestamp=…"), 32 lowercase hex digits."""
    return hashlib.md5(f"api_id={api_id}&api_key={api_key}&request_id={request_id}&timestamp={timestamp}"
                       .encode("utf-8")).hexdigest()


def authenticate(body: Any, config: SimConfig) -> tuple[str, str]:
    """2: the public parameters' api_id and request_id, or Refused; api_key is signed, never sent."""
    require(isinstance(body, dict) and "api_key" not in body, "ERROR_PARAMS")
    api_id, request_id, sig, ts = (body.get(k) for k in ("api_id", "request_id", "signature", "timestamp"))
    require(all(isinstance(v, str) and v for v in (api_id, request_id, sig))
            and isinstance(ts, (int, str)) and not isinstance(ts, bool), "ERROR_PARAMS")
    app = ihuyi_apps(config).get(api_id)
    require(app is not None, "ERROR_API_ID")
    require(re.fullmatch(r"[0-9]{10}", str(ts)) and abs(time.time() - int(ts)) <= config.timestamp_window_s,
            "ERROR_TIMESTAMP")
    require(sig == signature(api_id, app.api_key, request_id, ts), "ERROR_SIGNATURE")
    return api_id, request_id


def check_frames(content: Any, max_bytes: int) -> None:
    """9.1: frames of ≤1 text and ≤1 image/audio/video, known extensions, base64 media matching it, size."""
    require(isinstance(content, list) and content, "ERROR_CONTENT")
    total = 0
    for frame in content:
        require(isinstance(frame, list) and frame and all(isinstance(i, dict) for i in frame), "ERROR_CONTENT")
        kinds: Counter[str] = Counter()
        for item in frame:
            con, ext, data = item.get("con_type"), item.get("ext_type"), item.get("data")
            require(isinstance(data, str) and data, "ERROR_CONTENT")
            if con == "text":
                require(ext == "txt", "ERROR_CONTENT")
                kinds["text"] += 1
                total += len(data.encode("utf-8"))
                continue
            require(ext in EXTS.get(con, ()), "ERROR_CONTENT")
            kinds["media"] += 1
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise Refused("ERROR_CONTENT") from None
            if ext == "mp3":
                require(raw[:3] == b"ID3" or raw[:1] == b"\xff", "ERROR_CONTENT")
            else:
                at, magic = MAGIC[ext]
                require(raw[at:at + len(magic)] == magic, "ERROR_CONTENT")
            total += len(raw)
        require(kinds["text"] <= 1 and kinds["media"] <= 1, "ERROR_CONTENT")
    require(total <= max_bytes, "ERROR_CONTENT")


def check_title(title: Any) -> None:
    """A title is required text, not blank."""
    require(isinstance(title, str) and title.strip(), "ERROR_TITLE")


def check_sign_name(sign_name: Any) -> None:
    """A sign name is one 【…】."""
    require(isinstance(sign_name, str) and SIGN_NAME.fullmatch(sign_name), "ERROR_SIGN_NAME")


def check_send_time(send_time: Any) -> None:
    """3.3: a send_time, when given, is "YYYY-MM-DD HH:MM:SS"."""
    if send_time is None:
        return
    try:
        datetime.strptime(str(send_time), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise Refused("ERROR_SEND_TIME") from None
