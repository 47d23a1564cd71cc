"""`msgrelay up` and `msgrelay demo` run as an operator would (nothing configured), and stop cleanly on Ctrl-C.

`--exit` only skips the wait for Ctrl-C after the same summary (`make demo ARGS=--exit`)."""
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


def test_demo_runs_every_kind_prints_the_summary_and_stops_on_ctrl_c(tmp_path):
    # given a machine with nothing configured (no MSGRELAY_* at all)
    proc = subprocess.Popen([sys.executable, "-m", "msgrelay.cli", "demo", "--recipients", "1200", "--workdir",
                             str(tmp_path / "demo")], env=_clean_env(), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        # when it has run
        text = "".join(_wait_for_line(proc, r"running; Ctrl-C to stop", timeout_s=300))
        # then every kind is done, nothing was sent twice, and it says where to look
        assert "embedded Redis at redis://127.0.0.1:" in text and ":6379/" not in text
        rows = {m.group(1): m.group(0) for m in re.finditer(
            r"│ \d+\s+│ \w+\s+│ (notify|marketing|voice_sms|vfcode|ims|sms|mms)\b.*", text)}
        assert set(rows) == {"notify", "marketing", "voice_sms", "vfcode", "ims", "sms", "mms"}
        assert all("│ done" in row for row in rows.values())
        assert "0 duplicates" in text
        assert re.search(r"MMS template \d+ audited by push: approved", text)
        assert "inbound messages" in text and re.search(r"│ sms\s+│ 188\d{8}", text), "no 企业信使 reply shown"
        assert re.search(r"│ mms\s+│ 13[56]\d{8}", text), "no MMS reply shown"
        # the sending policy: marketing waited for its window, a "TD" reply suppressed one, the cap refused one
        opens, first_sent = re.search(r"window from (\d\d:\d\d:\d\d)\s+│ first sent (\d\d:\d\d:\d\d)", text).groups()
        assert first_sent >= opens or opens > "23:00", (opens, first_sent)
        assert re.search(r"│ sms\s+│ opt-out \(TD\)\s+│ 18800000007 rejected", text)
        assert re.search(r"│ vfcode\s+│ cap 2/day\s+│ 13700000000 rejected", text)
        api_port = int(re.search(r"API\s+http://127\.0\.0\.1:(\d+)/docs", text).group(1))
        assert re.search(r"Flower http://127\.0\.0\.1:\d+", text)
        # and Ctrl-C stops it and everything it started
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert _port_closed(api_port)
    finally:
        if proc.poll() is None:
            proc.kill()


def _free_port() -> int:
    from msgrelay.cli.processes import free_port
    return free_port()
