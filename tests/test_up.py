"""`msgrelay up` and `msgrelay demo` run as an operator would, and stop cleanly on Ctrl-C."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import requests


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGRELAY_")}
    return {**env, "COLUMNS": "160", **extra}


def _wait_for_line(proc: subprocess.Popen, pattern: str, timeout_s: float = 120) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"no line matching {pattern!r}; got:\n{''.join(lines)[-3000:]}")


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_up_serves_the_api_and_stops_on_ctrl_c(tmp_path):
    # given a real accounts file and nothing else configured
    (tmp_path / "accounts.toml").write_text(
        '[accounts.voice]\nprovider = "emay_voice"\nbase_url = "http://127.0.0.1:9"\napp_id = "A"\nsecret_key = "k"\n')
    env = _clean_env(MSGRELAY_DATABASE_URL=f"sqlite:///{tmp_path / 'up.db'}",
                     MSGRELAY_ACCOUNTS_FILE=str(tmp_path / "accounts.toml"))
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "msgrelay.cli", "up", "--api-port", str(port), "--flower-port",
                             str(_free_port()), "--workdir", str(tmp_path / "run")], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = _wait_for_line(proc, r"1 accounts; API http://127\.0\.0\.1:\d+/docs")
        assert any("embedded Redis" in ln for ln in lines)
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["status"] == "ok"
        # when
        proc.send_signal(signal.SIGINT)
        # then
        assert proc.wait(timeout=60) == 0
        assert _port_closed(port)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_demo_stops_cleanly_on_ctrl_c(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "msgrelay.cli", "demo", "--recipients", "600", "--workdir",
                             str(tmp_path / "demo")], env=_clean_env(), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines = _wait_for_line(proc, r"running; Ctrl-C to stop", timeout_s=300)
        api_port = int(re.search(r"API\s+http://127\.0\.0\.1:(\d+)", "".join(lines)).group(1))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert _port_closed(api_port)
    finally:
        if proc.poll() is None:
            proc.kill()


def _free_port() -> int:
    from msgrelay.processes import free_port
    return free_port()
