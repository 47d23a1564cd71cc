"""Emay pushed reports: plain and AES/ECB/PKCS5 + gzip bodies, the appId header, garbage refused."""
from __future__ import annotations

import gzip
import json
from datetime import datetime

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from models.statuses import MessageStatus
from providers.base import BEIJING, Carries
from providers.emay.push import MAX_INFLATED_BYTES, decode_emay_push
from providers.emay.voice import EmayVoice, decode_push_reports
from providers.errors import InvalidInput
from tests.providers.emay_doc001 import APP_ID, SECRET, emay_account

ACCOUNT = emay_account("voice", "emay_voice")

# 2.1.4.2 普通推送 json 串示例 (the document's braces fixed; the second record made a failure)
PUSH = {"code": "SUCCESS", "data": [
    {"appId": "EUCP - EMY - DDDD - 3EEEE", "voiceId": "20170392833833891100", "customVoiceId": "1553885000011111",
     "state": " SUCCESS ", "message": "成功", "callingTime": "2017-03-15 12:00:00", "callingDuration": 68.02,
     "mobile": "18566666666"},
    {"appId": "EUCP - EMY - DDDD - 3EEEE", "voiceId": "20170392833833891101", "customVoiceId": "1553885000011112",
     "state": " FAIL_CALL ", "message": "呼叫失败", "callingTime": "2017-03-15 12:00:05", "callingDuration": 0,
     "mobile": "18566666667"},
]}


def encrypt(secret_key: str, payload: bytes, *, compress: bool = True) -> bytes:
    """What Emay does: gzip, then AES/ECB/PKCS5Padding under the raw secretKey bytes."""
    data = gzip.compress(payload) if compress else payload
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(secret_key.encode()), modes.ECB()).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


PLAIN = json.dumps(PUSH, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("body", [PLAIN, encrypt(SECRET, PLAIN)], ids=["plain", "aes+gzip"])
def test_decode_round_trip(body: bytes) -> None:
    assert decode_emay_push(SECRET, body) == PUSH


def test_decode_with_a_32_byte_key() -> None:
    key = "k" * 32
    assert decode_emay_push(key, encrypt(key, PLAIN)) == PUSH


@pytest.mark.parametrize("body", [
    b"",
    b"hello, world",
    b"\x00" * 32,                                     # whole blocks, bad padding
    b"\x01" * 31,                                     # not whole blocks
    encrypt("fedcba9876543210", PLAIN),                # another account's key
    encrypt(SECRET, PLAIN, compress=False),           # encrypted but not gzip
    encrypt(SECRET, gzip.compress(b"not json")),      # gzip of something else
    encrypt(SECRET, b"[1, 2, 3]"),                    # JSON, but not an object
    b"[1, 2, 3]",
    encrypt(SECRET, PLAIN)[:-16],                     # truncated
], ids=["empty", "text", "zeros", "ragged", "other-key", "no-gzip", "not-json", "list", "plain-list", "truncated"])
def test_garbage_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidInput) as err:
        decode_emay_push(SECRET, body)
    assert err.value.field == "body"


def test_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b'{"code": "SUCCESS", "pad": "' + b" " * (MAX_INFLATED_BYTES + 1) + b'"}')
    with pytest.raises(InvalidInput):
        decode_emay_push(SECRET, encrypt(SECRET, bomb, compress=False))


def test_key_that_is_not_an_aes_key_is_named_without_the_secret() -> None:
    with pytest.raises(InvalidInput) as err:
        decode_emay_push("short", encrypt(SECRET, PLAIN))
    assert "short" not in str(err.value) and "16, 24 or 32" in err.value.rule


def test_provider_declares_its_one_push_of_reports() -> None:
    assert EmayVoice.push_path == "emay" and set(EmayVoice.pushes) == {""}
    push = EmayVoice().pushes[""]
    assert push.decode is decode_push_reports and push.carries is Carries.REPORTS


@pytest.mark.parametrize("header", ["appId", "appid", "APPID", "AppId"])
@pytest.mark.parametrize("body", [PLAIN, encrypt(SECRET, PLAIN)], ids=["plain", "aes+gzip"])
def test_provider_decodes_pushed_reports(header: str, body: bytes) -> None:
    delivered, failed = EmayVoice().pushes[""].decode(ACCOUNT, {header: APP_ID, "Content-Type": "x"}, body)
    assert (delivered.status, delivered.state, delivered.desc) == (MessageStatus.DELIVERED, "SUCCESS", "成功")
    assert delivered.custom_id == "1553885000011111" and delivered.provider_msg_id == "20170392833833891100"
    assert delivered.reported_at == datetime(2017, 3, 15, 12, 0, 0, tzinfo=BEIJING)
    assert (failed.status, failed.state) == (MessageStatus.FAILED, "FAIL_CALL")
    assert delivered.raw == PUSH["data"][0]


@pytest.mark.parametrize("headers, rule", [({}, "missing"), ({"appId": "EUCP-EMY-OTHER"}, "must be this account's")])
def test_provider_checks_the_appid_header(headers: dict[str, str], rule: str) -> None:
    with pytest.raises(InvalidInput) as err:
        decode_push_reports(ACCOUNT, headers, PLAIN)
    assert err.value.field == "headers.appId" and rule in err.value.rule


def test_provider_refuses_a_push_whose_data_is_not_a_list() -> None:
    with pytest.raises(InvalidInput) as err:
        decode_push_reports(ACCOUNT, {"appId": APP_ID}, b'{"code": "SUCCESS", "data": "x"}')
    assert err.value.field == "body"
