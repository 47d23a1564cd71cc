"""MMS frames from CLI options: `--frame text=… --frame image=photo.jpg --frame next --frame audio=a.mp3`.

Each `--frame` adds one item to the current frame; `--frame next` closes it. An item whose place in the
current frame is taken (a second text, or a second media file) starts a new frame by itself, so
`--frame text=A --frame image=a.jpg --frame text=B --frame image=b.jpg` is two frames. Files are read and
base64-encoded here; the rules (extensions, magic numbers, size) are checked by the provider's validation.
"""
from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

from providers.errors import InvalidInput
from providers.ihuyi.frames import TEXT_EXT

FRAME_HELP = ("MMS: one item per option: text=…, image=FILE (jpg, jpeg, png, gif), audio=FILE (mp3) or "
              "video=FILE (mp4); a frame holds one text and one media file, a second one starts the next frame, "
              "and '--frame next' starts one explicitly.")
MEDIA = ("image", "audio", "video")
MAX_FILE_BYTES = 10 * 1024 * 1024  # far above any carrier's MMS cap: refuse before reading it all


def _media_item(con_type: str, value: str, field: str) -> dict[str, str]:
    path = Path(value).expanduser()
    if not path.is_file():
        raise InvalidInput(field, f"{con_type}=FILE: no such file {value!r}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInput(field, f"{value!r} is {path.stat().st_size // 1024} KB: far over any MMS size cap")
    ext = path.suffix.lower().lstrip(".")
    return {"con_type": con_type, "ext_type": ext, "data": base64.b64encode(path.read_bytes()).decode("ascii")}


def frames_from_cli(items: list[str]) -> list[list[dict[str, str]]]:
    """ihuyi frames from --frame options; files are read and base64-encoded."""
    frames: list[list[dict[str, str]]] = []
    current: list[dict[str, str]] = []
    for n, raw in enumerate(items):
        field = f"--frame[{n}]"
        if raw.strip() == "next":
            if current:
                frames.append(current)
            current = []
            continue
        kind, sep, value = raw.partition("=")
        kind = kind.strip().lower()
        if not sep or kind not in ("text", *MEDIA):
            raise InvalidInput(field, f"{raw[:40]!r} must be text=…, image=FILE, audio=FILE, video=FILE or next")
        if kind == "text":
            if not value.strip():
                raise InvalidInput(field, "text= needs some text")
            item = {"con_type": "text", "ext_type": TEXT_EXT, "data": value}
        else:
            item = _media_item(kind, value, field)
        slot_taken = any((i["con_type"] == "text") == (kind == "text") for i in current)
        if slot_taken:
            frames.append(current)
            current = []
        current.append(item)
    if current:
        frames.append(current)
    if not frames:
        raise InvalidInput("--frame", "give at least one text=… or media file")
    return frames


def sample_png(width: int = 64, height: int = 64, rgb: tuple[int, int, int] = (230, 80, 40)) -> bytes:
    """A small valid PNG of one colour, made on the fly (the demo's and the tests' image frame)."""
    def chunk(tag: bytes, data: bytes) -> bytes:  # length, tag, data, CRC of tag + data
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width  # filter byte 0, then RGB pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * height))
            + chunk(b"IEND", b""))


def sample_frames(text: str = "周末上新，到店即送好礼") -> list[list[dict[str, str]]]:
    """Two frames: a text with a generated PNG, then a text alone (for the demo and tests)."""
    image = base64.b64encode(sample_png()).decode("ascii")
    return [[{"con_type": "text", "ext_type": TEXT_EXT, "data": text},
             {"con_type": "image", "ext_type": "png", "data": image}],
            [{"con_type": "text", "ext_type": TEXT_EXT, "data": "回复TD退订"}]]
