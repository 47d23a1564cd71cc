"""The signature header (DESIGN §9), table-driven, and the same rules over real HTTP against the example receiver:
wrong secrets are refused, and every step of a secret rotation stays verifiable."""
from __future__ import annotations

import hashlib
import hmac
import subprocess
import time

import pytest

from examples.webhook_receiver import Receiver
from examples.webhook_receiver import verify as example_verify
from msgrelay.webhooks import deliver, signing

BODY = b'{"events":[{"id":"evt_1"}]}'
T = 1_790_000_000


def test_header_is_t_then_one_v1_per_secret_first_secret_first():
    header = signing.sign(BODY, ["new", "old"], t=T)
    expected = [hmac.new(s.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest() for s in ("new", "old")]
    assert header == f"t={T},v1={expected[0]},v1={expected[1]}"


def test_signature_matches_openssl():
    # what docs/WEBHOOKS.md tells a receiver to run
    out = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", "s3cret"], input=f"{T}.".encode() + BODY,
                         capture_output=True, check=True).stdout.decode()
    assert out.strip().split()[-1] == signing.signature("s3cret", T, BODY)


@pytest.mark.parametrize(("signed_with", "receiver_holds", "body", "age_s", "ok"), [
    (["a"], ["a"], BODY, 0, True),
    (["a"], ["b"], BODY, 0, False),                      # wrong secret
    (["a"], ["b", "a"], BODY, 0, True),                  # the receiver rotated first
    (["b", "a"], ["a"], BODY, 0, True),                  # msgrelay rotated first: the old secret still signs
    (["b", "a"], ["b"], BODY, 0, True),                  # the receiver dropped the old one
    (["b"], ["a"], BODY, 0, False),                      # msgrelay dropped the one the receiver holds
    (["a"], ["a"], BODY + b" ", 0, False),               # a changed body
    (["a"], ["a"], BODY, 301, False),                    # too old: a replay
    (["a"], ["a"], BODY, -301, False),                   # from the future
    (["a"], ["a"], BODY, 299, True),
])
def test_verify(signed_with, receiver_holds, body, age_s, ok):
    header = signing.sign(BODY, signed_with, t=T)
    assert signing.verify(header, body, receiver_holds, now=T + age_s) is ok


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=abc,v1=abc", f"t={T}", f"t={T},v1=", "garbage"])
def test_malformed_headers_do_not_verify(header):
    assert signing.verify(header, BODY, ["a"], now=T) is False


def test_no_secret_refuses_to_sign():
    with pytest.raises(ValueError, match="MSGRELAY_WEBHOOK_SECRET"):
        signing.sign(BODY, [])


@pytest.mark.parametrize(("signed_with", "receiver_holds"), [(["a"], ["a"]), (["b", "a"], ["a"]), (["b", "a"], ["b"])])
def test_example_receiver_verifies_like_the_library(signed_with, receiver_holds):
    header = signing.sign(BODY, signed_with)
    assert example_verify(header, BODY, receiver_holds) is signing.verify(header, BODY, receiver_holds) is True


#: one rotation from "old" to "new", step by step: (msgrelay's secrets, the receiver's secrets)
ROTATION = [
    (["old"], ["old"]),
    (["old"], ["new", "old"]),        # 1. the receiver learns the new secret
    (["new", "old"], ["new", "old"]),  # 2. msgrelay signs with the new one first (and the old one still)
    (["new", "old"], ["new"]),        # 3. the receiver forgets the old one
    (["new"], ["new"]),               # 4. msgrelay forgets it too
]
REVERSED_ROTATION = [
    (["old"], ["old"]),
    (["new", "old"], ["old"]),        # msgrelay first: its second v1 is still the old secret's
    (["new", "old"], ["new", "old"]),
    (["new"], ["new", "old"]),
    (["new"], ["new"]),
]


@pytest.mark.parametrize("steps", [ROTATION, REVERSED_ROTATION], ids=["receiver-first", "msgrelay-first"])
def test_rotation_stays_verifiable_over_http(steps):
    receiver = Receiver([]).start()
    try:
        for ours, theirs in steps:
            receiver.secrets = theirs
            answer = deliver.post(receiver.url, BODY, ours, timeout_s=2)
            assert answer.ok, (ours, theirs, answer)
        assert all(r.verified for r in receiver.received)
    finally:
        receiver.stop()


def test_wrong_secret_is_refused_over_http_and_not_acknowledged():
    receiver = Receiver(["theirs"]).start()
    try:
        answer = deliver.post(receiver.url, BODY, ["ours"], timeout_s=2)
        assert not answer.ok and answer.status == 401 and answer.error.startswith("HTTP 401")
        assert receiver.events() == []
    finally:
        receiver.stop()


@pytest.mark.parametrize(("mode", "down", "error"), [
    ("error", False, "HTTP 500"),
    ("hang", False, "timeout: no answer within 0.5s"),
    ("ok", True, "connection failed"),
])
def test_failures_are_named_without_url_or_secret(mode, down, error):
    receiver = Receiver(["k"]).start()
    receiver.mode, receiver.hang_s = mode, 1.5
    if down:
        receiver.stop()
    started = time.monotonic()
    answer = deliver.post(receiver.url + "?token=tok-in-url", BODY, ["k"], timeout_s=0.5)
    assert not answer.ok and answer.error.startswith(error) and time.monotonic() - started < 2
    assert "tok-in-url" not in answer.error and "127.0.0.1" not in answer.error
    receiver.stop()
