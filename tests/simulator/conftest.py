"""Fixtures: the simulator served by uvicorn on a free loopback port, and a tiny push receiver."""
from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import uvicorn

from providers.simulator import EmayApp, SimConfig, create_app

# the document's own example appId (2.1.1.1); the voice-SMS example uses it too, so the join app differs by one letter
VOICE_APP = "EUCP-EMY-DDDD-3EEEE"
JOIN_APP = "EUCP-EMY-DDDD-3EEEJ"
VOICE_KEY = "0123456789abcdef"  # 16 bytes: also an AES-128 key for encrypted pushes
JOIN_KEY = "fedcba9876543210"
REPORT_DELAY_S = 0.3
BEIJING = timezone(timedelta(hours=8))
HELD_LONG_S = 60  # a stall or delay no test waits out: each is released by replacing the faults


def eventually(check: Callable[[], Any], what: str, timeout_s: float = 15) -> Any:
    """Poll `check` until it gives something truthy and return that; fail naming `what` after a generous
    deadline (a condition, not an elapsed time, so a loaded machine only makes the test slower)."""
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out after {timeout_s}s waiting for {what}"
        time.sleep(0.02)
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def beijing_timestamp(offset_s: float = 0) -> str:
    return (datetime.now(BEIJING) + timedelta(seconds=offset_s)).strftime("%Y%m%d%H%M%S")


def signed(app_id: str, key: str, *, balance: bool = False, offset_s: float = 0, **params) -> dict:
    """appId, timestamp (now + `offset_s`) and sign computed here, independently of the simulator, plus `params`;
    a balance call's sign has no timestamp."""
    if balance:
        return {"appId": app_id, "sign": hashlib.md5(f"{app_id}{key}".encode()).hexdigest(), **params}
    ts = beijing_timestamp(offset_s)
    return {"appId": app_id, "timestamp": ts, "sign": hashlib.md5(f"{app_id}{key}{ts}".encode()).hexdigest(), **params}


class SimClient:
    """A running simulator: its base URL, one HTTP session, and its control routes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def control(self, method: str, path: str, **kw) -> requests.Response:
        answer = self.http.request(method, self.url + path, **kw)
        answer.raise_for_status()
        return answer

    def reset(self) -> SimClient:
        """Forget every request, report and fault; returns the client, for the per-test fixtures."""
        self.control("POST", "/_sim/reset")
        return self


class Sim(SimClient):
    """The simulator with helpers for the Emay voice and voice-SMS routes."""

    def post(self, path: str, data: dict[str, str], **kw) -> requests.Response:
        return self.http.post(self.url + path, data=data, **kw)

    def voice(self, path: str, **params: str) -> dict:
        return self.post(path, signed(VOICE_APP, VOICE_KEY, **params)).json()

    def join(self, path: str, **params: str) -> dict:
        return self.post(path, signed(JOIN_APP, JOIN_KEY, **params)).json()


@contextmanager
def serving(config: SimConfig) -> Iterator[str]:
    """The simulator served on a free loopback port while the block runs; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, access_log=False,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "simulator did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def sim_server() -> Iterator[Sim]:
    config = SimConfig(
        credentials={"emay": {VOICE_APP: EmayApp(VOICE_KEY, "voice"), JOIN_APP: EmayApp(JOIN_KEY, "join")}},
        report_delay_s=REPORT_DELAY_S,
    )
    with serving(config) as url:
        yield Sim(url)


@pytest.fixture
def sim(sim_server: Sim) -> Sim:
    return sim_server.reset()


class Receiver:
    """A push receiver answering `answers` in turn (then the last one forever), recording every push; with a
    `gate`, each answer waits until the gate is set (the pusher is held mid-push meanwhile)."""

    def __init__(self, answers: list[str], gate: threading.Event | None = None) -> None:
        self.answers = list(answers)
        self.pushes: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.pushes.append((dict(self.headers), body))
                if gate is not None:
                    gate.wait(timeout=30)
                text = receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                data = text.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.pushes) < n:
            assert time.monotonic() < deadline, f"only {len(self.pushes)} pushes received"
            time.sleep(0.02)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory() -> Iterator:
    made: list[Receiver] = []

    def make(*answers: str, gate: threading.Event | None = None) -> Receiver:
        made.append(Receiver(list(answers) or ["success"], gate))
        return made[-1]

    yield make
    for r in made:
        r.close()
