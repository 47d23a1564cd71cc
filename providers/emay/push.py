"""Emay's pushed reports (document 001, 2.1.4.1): plain UTF-8 JSON, or AES/ECB/PKCS5Padding over gzip over UTF-8
JSON keyed with the account's raw secretKey bytes (``AES.decrypt(bytes, secretKey.getBytes())``, then
``GZIPUtils.decompress``, then ``new String(bytes, "UTF-8")``). Pure: bytes in, a JSON object out.
"""
from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from providers.errors import InvalidInput

AES_BLOCK_BYTES = 16
#: a push is a few hundred reports at most; refuse to inflate more than this (a gzip bomb)
MAX_INFLATED_BYTES = 16 * 1024 * 1024
_NOT_A_PUSH = "not an Emay push: neither UTF-8 JSON nor AES/ECB + gzip JSON under this account's secretKey"


def _json_object(raw: bytes) -> dict[str, Any] | None:
    """The JSON object in `raw`, or None when it is not one."""
    try:
        payload = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _aes_ecb_decrypt(key: bytes, body: bytes) -> bytes | None:
    """AES/ECB with PKCS5 (= PKCS7 on 16-byte blocks) padding removed; None when that fails."""
    if not body or len(body) % AES_BLOCK_BYTES:
        return None
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()  # noqa: S305 - Emay's choice, not ours
    padded = decryptor.update(body) + decryptor.finalize()
    unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return None


def _gunzip(data: bytes) -> bytes | None:
    """Gzip-decompressed `data`, at most MAX_INFLATED_BYTES; None when it is not (complete) gzip."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_INFLATED_BYTES)
    except zlib.error:
        return None
    if inflater.unconsumed_tail or not inflater.eof:
        return None  # larger than the cap, or truncated
    return out


def decode_emay_push(secret_key: str, body: bytes) -> dict[str, Any]:
    """The JSON object of a pushed body, plain or encrypted; anything else raises InvalidInput("body")."""
    if not isinstance(body, (bytes, bytearray)) or not body:
        raise InvalidInput("body", "empty: an Emay push carries a JSON report list")
    body = bytes(body)
    plain = _json_object(body)
    if plain is not None:
        return plain
    key = secret_key.encode("utf-8")
    if len(key) not in (16, 24, 32):
        # An AES key is 16, 24 or 32 bytes; do not say more about the secret than that.
        raise InvalidInput("body", "encrypted push cannot be decrypted: the account's secretKey is not "
                                   "16, 24 or 32 bytes, so it is not an AES key")
    decrypted = _aes_ecb_decrypt(key, body)
    inflated = _gunzip(decrypted) if decrypted is not None else None
    payload = _json_object(inflated) if inflated is not None else None
    if payload is None:
        raise InvalidInput("body", _NOT_A_PUSH)
    return payload


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value by case-insensitive name (HTTP names are case-insensitive), None if absent."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def require_app_id(headers: Mapping[str, str], app_id: str) -> None:
    """Refuse a push whose `appId` header is missing or is not this account's appId."""
    value = header(headers, "appId")
    if value is None:
        raise InvalidInput("headers.appId", "missing: Emay names the account in the appId header")
    if value.strip() != app_id:
        raise InvalidInput("headers.appId", f"must be this account's appId, got {value[:40]!r}")
