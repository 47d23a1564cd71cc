"""ihuyi MMS content and jobs (document 002, 3.3 and 9.1): frames of at most one text and one media item,
media in base64; a signature in 【】 and a title unless a template is named.

Pure validators, run at submission and at template creation before anything is written or sent; each
refusal is an InvalidInput naming the item (``content[2][1].ext_type``) and the rule. The total size is
checked separately (``check_size``) because its cap belongs to the account (``mms_max_kb``, default 300).
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from providers.base import Recipient, SendSpec
from providers.common import require_text, shown
from providers.errors import InvalidInput
from providers.ihuyi.common import DEFAULT_MAX_KB

TEXT_EXT = "txt"  # the document's example writes every text item with ext_type "txt"
MEDIA_EXTS: Mapping[str, tuple[str, ...]] = {
    "image": ("jpg", "jpeg", "png", "gif"),
    "audio": ("mp3",),
    "video": ("mp4",),
}
EXT_CON_TYPE = {ext: con_type for con_type, exts in MEDIA_EXTS.items() for ext in exts}
ITEM_KEYS = ("con_type", "ext_type", "data")
KB = 1024
# 【】 around a company or shop name (1.7); 2–16 characters inside is the carriers' usual rule
SIGN_NAME = re.compile(r"【[^【】]{2,16}】")
SIGN_NAME_RULE = "must be the company or shop name in 【】, 2 to 16 characters inside, e.g. 【互亿无线】"
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
MMS_OPTIONS = frozenset({"title", "sign_name", "template_id", "product_id"})  # 3.3's own names
TITLE_MAX_CHARS = 64  # ours: the document gives no limit


def _is_mp3(head: bytes) -> bool:
    # an ID3 tag, or straight into an MPEG audio frame (11 sync bits set)
    return head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _is_jpeg(head: bytes) -> bool:
    return head[:3] == b"\xff\xd8\xff"


#: extension → test of the file's first bytes (its magic number)
MAGIC: Mapping[str, Callable[[bytes], bool]] = {
    "jpg": _is_jpeg,
    "jpeg": _is_jpeg,
    "png": lambda head: head[:8] == b"\x89PNG\r\n\x1a\n",
    "gif": lambda head: head[:6] in (b"GIF87a", b"GIF89a"),
    "mp3": _is_mp3,
    "mp4": lambda head: head[4:8] == b"ftyp",
}


def sniff(data: bytes) -> str | None:
    """The extension whose magic number `data` starts with (jpeg reads as jpg), or None."""
    return next((ext for ext, test in MAGIC.items() if test(data[:16])), None)


def text_frame(text: str) -> list[list[dict[str, str]]]:
    """One frame holding one text item: what a plain-string `content` means."""
    return [[{"con_type": "text", "ext_type": TEXT_EXT, "data": text}]]


def frames_of(content: Any) -> Any:
    """The frames a job's content stands for: a plain string is one text frame; anything else as given."""
    return text_frame(content) if isinstance(content, str) else content


def _media_bytes(where: str, ext: str, data: Any) -> int:
    """Decode a media item's base64 and check its magic number against `ext`; returns the decoded size."""
    if not isinstance(data, str) or not data:
        raise InvalidInput(f"{where}.data", "media must be base64 text of the file's bytes, got "
                                            f"{type(data).__name__ if not isinstance(data, str) else 'empty text'}")
    if len(data) % 4 or _B64.fullmatch(data) is None:
        raise InvalidInput(f"{where}.data", "is not base64 (standard alphabet, padded, no line breaks)")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{where}.data", "is not base64 (standard alphabet, padded, no line breaks)") from None
    if not MAGIC[ext](raw[:16]):
        looks = sniff(raw)
        seen = f"the bytes look like {looks}" if looks else "the bytes are no jpg, png, gif, mp3 or mp4"
        raise InvalidInput(f"{where}.ext_type", f"extension {ext!r} does not match the file: {seen}")
    return len(raw)


def validate_frames(content: Any, *, field: str = "content") -> int:
    """Refuse content that breaks 9.1's rules; returns its size in bytes (text as UTF-8, media decoded)."""
    if content is None:
        raise InvalidInput(field, "is required: a list of frames [[{con_type, ext_type, data}]] or a text")
    frames = frames_of(content)
    if not isinstance(frames, list) or not frames:
        raise InvalidInput(field, "must be a non-empty list of frames, each a list of {con_type, ext_type, data}")
    size = 0
    for f, frame in enumerate(frames):
        where_frame = f"{field}[{f}]"
        if not isinstance(frame, list) or not frame:
            raise InvalidInput(where_frame, "a frame must be a non-empty list of {con_type, ext_type, data} items")
        texts = media = 0
        for i, item in enumerate(frame):
            where = f"{where_frame}[{i}]"
            if not isinstance(item, Mapping) or set(item) != set(ITEM_KEYS):
                raise InvalidInput(where, "an item must be an object with exactly con_type, ext_type and data")
            con_type, ext = item["con_type"], item["ext_type"]
            if con_type == "text":
                texts += 1
                if ext != TEXT_EXT:
                    raise InvalidInput(f"{where}.ext_type", f'a text item has ext_type "txt", got {shown(ext)}')
                if not isinstance(item["data"], str) or not item["data"].strip():
                    raise InvalidInput(f"{where}.data", "a text item needs non-blank UTF-8 text")
                size += len(item["data"].encode("utf-8"))
            elif con_type in MEDIA_EXTS:
                media += 1
                if ext not in MEDIA_EXTS[con_type]:
                    exts = ", ".join(MEDIA_EXTS[con_type])
                    raise InvalidInput(f"{where}.ext_type", f"{con_type} must be one of {exts}, got {shown(ext)} "
                                                            "(MMS takes jpg, jpeg, png, gif, mp3 and mp4 only)")
                size += _media_bytes(where, ext, item["data"])
            else:
                raise InvalidInput(f"{where}.con_type", f"must be text, image, audio or video, got {shown(con_type)}")
        if texts > 1 or media > 1:
            raise InvalidInput(where_frame, "a frame holds at most one text and one media item (image, audio or "
                                            "video): put each further text or media file in a frame of its own")
    return size


def check_size(size: int, max_kb: int = DEFAULT_MAX_KB, *, field: str = "content") -> None:
    """Refuse content over the account's cap (carriers drop larger MMS)."""
    if size > max_kb * KB:
        raise InvalidInput(field, f"the MMS is {size / KB:.0f} KB (text + decoded media); at most {max_kb} KB "
                                  "for this account (its `mms_max_kb`)")


def _decoded_len(data: str) -> int:
    """Bytes a padded base64 text decodes to, without decoding it."""
    return len(data) * 3 // 4 - data[-2:].count("=")


def content_size(content: Any) -> int:
    """Size in bytes of already-validated content, without decoding the media."""
    return sum(len(item["data"].encode("utf-8")) if item["con_type"] == "text" else _decoded_len(item["data"])
               for frame in frames_of(content) for item in frame)


def validate_sign_name(value: Any, *, field: str = "options.sign_name", required: bool) -> str | None:
    """The MMS signature in 【】 form; None when absent and not required."""
    if value is None or value == "":
        if required:
            raise InvalidInput(field, f"is required when no template_id is given: {SIGN_NAME_RULE}")
        return None
    if not isinstance(value, str) or SIGN_NAME.fullmatch(value) is None:
        raise InvalidInput(field, f"{SIGN_NAME_RULE}; got {shown(value)}")
    return value


def summary(content: Any) -> list[list[dict[str, Any]]]:
    """The frames without media bytes (text kept, media as its size): what the templates table stores."""
    return [[dict(item) if item["con_type"] == "text" else
             {"con_type": item["con_type"], "ext_type": item["ext_type"], "bytes": _decoded_len(item["data"])}
             for item in frame] for frame in frames_of(content)]


INT_OPTION_MAX_DIGITS = 19  # a positive 64-bit integer


def int_option(options: Mapping[str, Any], name: str) -> int | None:
    """An integer option (int or digit string), None when absent."""
    value = options.get(name)
    if value is None or value == "":
        return None
    digits = isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit()
                                        and len(value) <= INT_OPTION_MAX_DIGITS)
    if isinstance(value, bool) or not digits or not 0 < int(value) < 2 ** 63:
        raise InvalidInput(f"options.{name}", f"must be a positive integer, got {shown(value)}")
    return int(value)


def check_job(spec: SendSpec, recipients: Sequence[Recipient]) -> None:
    """What the document's rules refuse beyond the declared limits: frames or a template (not both), a title,
    the signature in 【】 unless templated."""
    options = spec.options or {}
    int_option(options, "product_id")
    template_id = int_option(options, "template_id")
    if template_id is not None and spec.content is not None:
        raise InvalidInput("content", "give either content or options.template_id, not both "
                                      "(ihuyi would send the content and ignore the template)")
    if template_id is None:
        validate_frames(spec.content)
        require_text("options.title", options.get("title"), TITLE_MAX_CHARS)
    elif options.get("title") is not None:
        require_text("options.title", options.get("title"), TITLE_MAX_CHARS)
    validate_sign_name(options.get("sign_name"), required=template_id is None)
