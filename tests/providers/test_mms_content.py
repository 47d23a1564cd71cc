"""Table-driven tests of the MMS frame rules (document 002, 9.1) and of CLI frames (`--frame`)."""
from __future__ import annotations

import base64
import copy

import pytest

from msgrelay.cli.frames import frames_from_cli, sample_frames, sample_png
from providers.errors import InvalidInput
from providers.ihuyi.frames import (
    DEFAULT_MAX_KB, KB, check_size, content_size, frames_of, sniff, summary, validate_frames, validate_sign_name,
)

PNG = sample_png()
JPG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
GIF = b"GIF89a" + b"\x00" * 32
MP3 = b"ID3\x03\x00\x00\x00" + b"\x00" * 32
MP3_BARE = b"\xff\xfb\x90\x64" + b"\x00" * 32  # an MPEG frame without an ID3 tag
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 32
EXE = b"MZ\x90\x00" + b"\x00" * 32


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def text(data: str = "这是测试文本内容1") -> dict:
    return {"con_type": "text", "ext_type": "txt", "data": data}


def media(con_type: str, ext: str, data: bytes) -> dict:
    return {"con_type": con_type, "ext_type": ext, "data": b64(data)}


# 9.1's example, its placeholder data ("这是base64内容", "test") replaced by real files of each type
DOC_EXAMPLE = [
    [text("这是测试文本内容1"), media("image", "jpg", JPG)],
    [text("这是测试文本内容2"), media("video", "mp4", MP4)],
    [media("image", "jpg", JPG), text("这是测试文本内容3")],
    [media("audio", "mp3", MP3), text("这是测试文本内容4")],
]


def test_the_documents_example_shape_is_valid_and_sized_by_decoded_bytes():
    size = validate_frames(DOC_EXAMPLE)
    texts = sum(len(f"这是测试文本内容{i}".encode()) for i in range(1, 5))
    assert size == texts + 2 * len(JPG) + len(MP4) + len(MP3)
    assert content_size(DOC_EXAMPLE) == size


def test_the_documents_placeholder_data_is_refused_as_no_real_media():
    placeholder = [[{"con_type": "audio", "ext_type": "mp3", "data": "test"}, text()]]  # "test" is base64 of 3 bytes
    with pytest.raises(InvalidInput) as exc:
        validate_frames(placeholder)
    assert exc.value.field == "content[0][0].ext_type" and "does not match" in exc.value.rule


@pytest.mark.parametrize("ext, data", [("jpg", JPG), ("jpeg", JPG), ("png", PNG), ("gif", GIF), ("mp3", MP3),
                                       ("mp3", MP3_BARE), ("mp4", MP4)])
def test_each_extension_with_its_own_bytes_is_valid(ext, data):
    con_type = {"mp3": "audio", "mp4": "video"}.get(ext, "image")
    assert validate_frames([[media(con_type, ext, data)]]) == len(data)


@pytest.mark.parametrize("content, field, words", [
    (None, "content", "is required"),
    ([], "content", "non-empty list"),
    ({"frames": []}, "content", "non-empty list"),
    ([[]], "content[0]", "non-empty list"),
    ([text()], "content[0]", "non-empty list"),  # an item where a frame belongs
    ([[text(), media("image", "png", PNG), media("image", "gif", GIF)]], "content[0]",
     "at most one text and one media"),
    ([[media("image", "png", PNG), media("audio", "mp3", MP3)]], "content[0]", "at most one text and one media"),
    ([[text("a"), text("b")]], "content[0]", "at most one text"),
    ([[media("image", "exe", EXE)]], "content[0][0].ext_type", "jpg, jpeg, png, gif"),
    ([[media("video", "mp3", MP3)]], "content[0][0].ext_type", "video must be one of mp4"),
    ([[media("image", "JPG", JPG)]], "content[0][0].ext_type", "image must be one of"),
    ([[media("image", "png", JPG)]], "content[0][0].ext_type", "look like jpg"),
    ([[media("image", "jpg", EXE)]], "content[0][0].ext_type", "no jpg, png, gif, mp3 or mp4"),
    ([[{"con_type": "image", "ext_type": "png", "data": "not base64!"}]], "content[0][0].data", "not base64"),
    ([[{"con_type": "image", "ext_type": "png", "data": b64(PNG)[:-1]}]], "content[0][0].data", "not base64"),
    ([[{"con_type": "image", "ext_type": "png", "data": ""}]], "content[0][0].data", "base64"),
    ([[{"con_type": "text", "ext_type": "txt", "data": "  "}]], "content[0][0].data", "non-blank"),
    ([[{"con_type": "text", "ext_type": "html", "data": "hi"}]], "content[0][0].ext_type", '"txt"'),
    ([[{"con_type": "document", "ext_type": "pdf", "data": "eA=="}]], "content[0][0].con_type", "text, image"),
    ([[{"con_type": "text", "data": "hi"}]], "content[0][0]", "exactly con_type, ext_type and data"),
    ([[text(), {"con_type": "text", "ext_type": "txt", "data": "x", "size": 1}]], "content[0][1]", "exactly"),
    ([[text()], [text(), media("image", "exe", EXE)]], "content[1][1].ext_type", "jpg"),
])
def test_invalid_frames_name_the_item_and_the_rule(content, field, words):
    with pytest.raises(InvalidInput) as exc:
        validate_frames(content)
    assert exc.value.field == field
    assert words in exc.value.rule


def test_a_plain_string_is_one_text_frame():
    assert frames_of("你好") == [[{"con_type": "text", "ext_type": "txt", "data": "你好"}]]
    assert validate_frames("你好") == len("你好".encode())


@pytest.mark.parametrize("size, cap, ok", [
    (DEFAULT_MAX_KB * KB, DEFAULT_MAX_KB, True),
    (DEFAULT_MAX_KB * KB + 1, DEFAULT_MAX_KB, False),
    (400 * KB, 500, True),
])
def test_size_cap(size, cap, ok):
    if ok:
        check_size(size, cap)
    else:
        with pytest.raises(InvalidInput) as exc:
            check_size(size, cap)
        assert exc.value.field == "content" and f"at most {cap} KB" in exc.value.rule


@pytest.mark.parametrize("value, required, ok", [
    ("【互亿无线】", True, True),  # the document's own example (1.7)
    ("【Acme Shop】", True, True),
    (None, False, True),
    ("", False, True),
    (None, True, False),
    ("互亿无线", True, False),
    ("[互亿无线]", False, False),
    ("【互亿无线", False, False),
    ("【】", False, False),
    ("【一】", False, False),
    ("【" + "长" * 17 + "】", False, False),
    ("【互亿】【无线】", False, False),
    (123, False, False),
])
def test_sign_name(value, required, ok):
    if ok:
        assert validate_sign_name(value, required=required) == (value or None)
    else:
        with pytest.raises(InvalidInput) as exc:
            validate_sign_name(value, required=required)
        assert exc.value.field == "options.sign_name" and "【】" in exc.value.rule


@pytest.mark.parametrize("data, ext", [(JPG, "jpg"), (PNG, "png"), (GIF, "gif"), (MP3, "mp3"), (MP4, "mp4"),
                                       (EXE, None), (b"", None)])
def test_sniff(data, ext):
    assert sniff(data) == ext


def test_summary_keeps_text_and_drops_media_bytes():
    assert summary(DOC_EXAMPLE)[0] == [text("这是测试文本内容1"), {"con_type": "image", "ext_type": "jpg", "bytes": len(JPG)}]


# ---- CLI frames -------------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path):
    out = {}
    for name, data in {"a.jpg": JPG, "b.PNG": PNG, "c.mp3": MP3, "d.mp4": MP4, "virus.exe": EXE}.items():
        (tmp_path / name).write_bytes(data)
        out[name] = str(tmp_path / name)
    return out


def test_cli_frames_split_when_a_place_is_taken_and_on_next(files):
    frames = frames_from_cli([
        "text=第一帧", f"image={files['a.jpg']}",  # frame 1
        "text=第二帧, 带逗号=和等号", f"image={files['b.PNG']}",  # a second text starts frame 2
        f"audio={files['c.mp3']}",  # a second media starts frame 3
        "next", f"video={files['d.mp4']}",  # frame 4
    ])
    assert [[(i["con_type"], i["ext_type"]) for i in f] for f in frames] == [
        [("text", "txt"), ("image", "jpg")], [("text", "txt"), ("image", "png")], [("audio", "mp3")],
        [("video", "mp4")]]
    assert frames[1][0]["data"] == "第二帧, 带逗号=和等号"
    assert base64.b64decode(frames[0][1]["data"]) == JPG
    validate_frames(frames)


@pytest.mark.parametrize("items, field, words", [
    ([], "--frame", "at least one"),
    (["next"], "--frame", "at least one"),
    (["photo.jpg"], "--frame[0]", "text=…, image=FILE"),
    (["picture=x.jpg"], "--frame[0]", "text=…, image=FILE"),
    (["text="], "--frame[0]", "needs some text"),
    (["text=hi", "image=/no/such/file.jpg"], "--frame[1]", "no such file"),
])
def test_cli_frames_refused(items, field, words):
    with pytest.raises(InvalidInput) as exc:
        frames_from_cli(items)
    assert exc.value.field == field and words in exc.value.rule


def test_cli_exe_is_read_then_refused_by_the_frame_rules(files):
    frames = frames_from_cli(["text=hi", f"image={files['virus.exe']}"])
    with pytest.raises(InvalidInput) as exc:
        validate_frames(frames)
    assert exc.value.field == "content[0][1].ext_type" and "'exe'" in exc.value.rule


def test_sample_frames_are_valid_and_the_png_is_real():
    assert sniff(sample_png()) == "png"
    assert validate_frames(sample_frames()) < 10 * KB
    assert validate_frames(copy.deepcopy(sample_frames())) == content_size(sample_frames())
