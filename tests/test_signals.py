"""`msgrelay up` and `msgrelay demo` stop every process they started on SIGTERM, SIGHUP and SIGINT alike.

Each test runs the real command. The processes it started are found in /proc before the signal: its children, every
process carrying a marker it passed down in the environment, and every process in those processes' sessions (each
child leads its own session; a Celery pool shares its worker's). After the signal, the test polls until none of
them is left, including any started after the snapshot (they carry the marker too)."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from msgrelay.cli.priority import API_NICE, AUTOGROUPS, QUEUE_NICE, REDIS_NICE, session_niceness
from msgrelay.cli.processes import free_port

PARENT_EXIT_S = 40  # the supervisor gives its children 15 s to stop before it kills them: well inside this
CHILDREN_GONE_S = 10
REPO = Path(__file__).resolve().parents[1]
MARK = "MSGRELAY_SIGNAL_TEST_MARK"  # no setting: only inherited, so that descendants can be found
UP_ROLES = ("redis-server", "worker --queues otp ", "worker --queues bulk ", "worker --queues poll ",
            "worker --queues webhooks ", "cli beat ", "cli api ", "cli flower ")
UP_READY = r"1 accounts; API http://127\.0\.0\.1:\d+/docs"


@dataclass(frozen=True)
class Proc:
    """One live process as /proc shows it."""

    ppid: int
    sid: int
    environ: bytes
    cmd: str


def _live() -> dict[int, Proc]:
    """Every process that is not a zombie (a zombie holds nothing but its pid until someone reaps it)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid, _pgrp, sid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:4]
            environ = (entry / "environ").read_bytes()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it exited while we looked
            continue
        if state != "Z":
            found[int(entry.name)] = Proc(int(ppid), int(sid), environ, cmd)
    return found


def _poll(condition: Callable[[], object], *, timeout_s: float) -> bool:
    """Wait until `condition()` is truthy, at most `timeout_s`; whether it became so."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return bool(condition())
        time.sleep(0.1)
    return True


@dataclass
class Run:
    """One `python -m msgrelay.cli …` under test and what the test has seen of the processes it started."""

    proc: subprocess.Popen
    mark: str
    sessions: set[int] = field(default_factory=set)

    def _ours(self, p: Proc) -> bool:
        return p.sid in self.sessions or f"{MARK}={self.mark}".encode() in p.environ.split(b"\0")

    def snapshot(self) -> dict[int, str]:
        """The parent's processes now (pid → command line); their sessions are remembered for `left`."""
        procs = _live()
        # redis-server writes its process title over its environment: it is found as a child, then by its session
        self.sessions |= {p.sid for pid, p in procs.items() if pid == self.proc.pid or p.ppid == self.proc.pid
                          or self._ours(p)}
        return {pid: p.cmd for pid, p in procs.items() if self._ours(p) and pid != self.proc.pid}

    def left(self) -> dict[int, str]:
        """Processes of this run still alive (the parent included)."""
        return {pid: p.cmd for pid, p in _live().items() if self._ours(p)}

    def read_until(self, pattern: str, timeout_s: float = 60) -> str:
        """Output up to the first line matching `pattern` (a read blocks, so the bound is checked per line)."""
        text = ""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            text += line
            if re.search(pattern, line):
                return text
        raise AssertionError(f"no line matching {pattern!r}; got:\n{text[-3000:]}")

    def stack_complete(self, roles: tuple[str, ...] = UP_ROLES) -> dict[int, str]:
        """Wait until a process of every role runs (a worker forks its pool a moment after starting)."""
        assert _poll(lambda: all(any(r in c for c in self.snapshot().values()) for r in roles), timeout_s=20), \
            "\n".join(self.snapshot().values())
        return self.snapshot()

    def assert_stops_everything(self, sent_at: float) -> str:
        """The parent exits 0 within its bound and nothing it started is left; the rest of its output."""
        rest, _ = self.proc.communicate(timeout=PARENT_EXIT_S)
        parent_s = time.monotonic() - sent_at
        assert _poll(lambda: not self.left(), timeout_s=CHILDREN_GONE_S), \
            f"left running after the parent exited ({self.proc.returncode}):\n" + "\n".join(self.left().values())
        assert self.proc.returncode == 0, rest[-3000:]
        print(f"parent exited {parent_s:.1f}s after the signal; nothing left after {time.monotonic() - sent_at:.1f}s")
        return rest

    def kill(self) -> None:
        """Leave nothing running, whatever the test found: SIGKILL the group of every process of this run."""
        # the parent first and for good, so that it cannot start a child between our listing and our kills
        if self.proc.poll() is None:  # not reaped yet, so its group id is still its own
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()

        def kill_left() -> bool:
            for pid in self.left():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
            return not self.left()
        assert _poll(kill_left, timeout_s=10), f"could not kill: {self.left()}"


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    """Start `python -m msgrelay.cli ARGS…` with nothing configured but a small accounts file; killed after."""
    runs: list[Run] = []
    (tmp_path / "accounts.toml").write_text('[accounts.voice]\nprovider = "emay_voice"\n'
                                            'base_url = "http://127.0.0.1:9"\napp_id = "A"\nsecret_key = "k"\n')

    def start(*args: str, module: str = "msgrelay.cli") -> Run:
        mark = uuid.uuid4().hex
        env = {k: v for k, v in os.environ.items() if not k.startswith("MSGRELAY_")}
        env.update({"COLUMNS": "160", MARK: mark, "MSGRELAY_DATABASE_URL": f"sqlite:///{tmp_path / 'up.db'}",
                    "MSGRELAY_ACCOUNTS_FILE": str(tmp_path / "accounts.toml")})
        # its own session: the kill below takes its group without touching pytest's
        cwd = tmp_path if module.startswith("msgrelay.") else REPO  # the benchmarks are not installed: run in place
        proc = subprocess.Popen([sys.executable, "-m", module, *args], env=env, cwd=cwd, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        runs.append(Run(proc, mark))
        return runs[-1]

    try:
        yield start
    finally:
        for run in runs:
            run.kill()


def _up(cli: Callable[..., Run], tmp_path: Path) -> Run:
    return cli("up", "--api-port", str(free_port()), "--flower-port", str(free_port()), "--workdir",
               str(tmp_path / "run"))


def _niceness(pid: int) -> set[int]:
    """The niceness of each thread of a process (Linux keeps it per thread)."""
    found = set()
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(OSError):
            found.add(int(stat.read_text().rsplit(")", 1)[1].split()[16]))  # field 19 of stat: nice
    return found




@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_up_stops_every_child_on(sig, cli, tmp_path):
    # given a running `msgrelay up` and the processes it started
    run = _up(cli, tmp_path)
    run.read_until(UP_READY)
    started = run.stack_complete()
    # (sends, reports and deliveries yield the CPU to the otp worker: every thread of each, and its session)
    workers = {pid: re.search(r"worker --queues (\w+) ", cmd)[1] for pid, cmd in started.items()
               if "worker --queues" in cmd}
    # (and the otp worker goes first, where it may: raising needs CAP_SYS_NICE)
    nice = {q: QUEUE_NICE[q] if QUEUE_NICE[q] >= 0 or os.geteuid() == 0 else 0 for q in workers.values()}
    assert {queue: _niceness(pid) for pid, queue in workers.items()} == {q: {n} for q, n in nice.items()}
    assert {queue: session_niceness(pid) for pid, queue in workers.items()} == {
        q: n if AUTOGROUPS else None for q, n in nice.items()}
    api = next(pid for pid, cmd in started.items() if " api --port" in cmd)
    assert _niceness(api) == {API_NICE if os.geteuid() == 0 else 0}
    # (and the embedded Redis, which carries every step of a call, with the API: every thread, and its session)
    redis_pid = next(pid for pid, cmd in started.items() if "redis-server" in cmd)
    assert _niceness(redis_pid) == {REDIS_NICE if os.geteuid() == 0 else 0}
    assert session_niceness(redis_pid) == (REDIS_NICE if os.geteuid() == 0 else 0) if AUTOGROUPS else None
    # when
    sent_at = time.monotonic()
    run.proc.send_signal(sig)
    # then
    rest = run.assert_stops_everything(sent_at)
    assert f"{sig.name}: stopping" in rest


def test_up_finishes_its_clean_up_through_a_second_ctrl_c(cli, tmp_path):
    # given a running `msgrelay up`
    run = _up(cli, tmp_path)
    run.read_until(UP_READY)
    run.stack_complete()
    # when Ctrl-C is pressed twice, the second time while the clean-up runs
    sent_at = time.monotonic()
    run.proc.send_signal(signal.SIGINT)
    run.read_until(r"SIGINT: stopping", timeout_s=10)
    assert run.proc.poll() is None and run.snapshot(), "clean-up over already: a second signal would prove nothing"
    run.proc.send_signal(signal.SIGINT)
    # then the clean-up still runs to the end
    run.assert_stops_everything(sent_at)


def test_up_stopped_while_it_starts_leaves_nothing(cli, tmp_path):
    # given `msgrelay up` half-way through starting: Redis up, the rest starting, the API not answering yet
    run = _up(cli, tmp_path)
    run.read_until(r"embedded Redis at redis://")
    assert any("redis-server" in cmd for cmd in run.snapshot().values())
    # when
    sent_at = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    # then
    rest = run.assert_stops_everything(sent_at)
    assert "SIGTERM: stopping" in rest and "accounts; API" not in rest


def test_demo_stops_every_child_on_sigterm_while_sending(cli, tmp_path):
    # given `msgrelay demo` with every process up and its first job being sent
    run = cli("demo", "--recipients", "1200", "--workdir", str(tmp_path / "demo"))
    run.read_until(r"submitted job \d+: notify")
    run.stack_complete(UP_ROLES + ("cli simulate ",))
    # when
    sent_at = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    # then
    rest = run.assert_stops_everything(sent_at)
    assert "SIGTERM: stopping" in rest


def test_a_benchmark_stopped_by_sigterm_leaves_nothing_running(cli):
    """A benchmark's (and the chaos run's) stack stops with it: left running, its workers would take the chunks
    of the next run's recreated database and send them to a simulator that no longer counts them."""
    # given a benchmark with its stack started
    run = cli("50000", module="benchmarks.bench_send")
    run.stack_complete(("redis-server", "cli simulate", "cli api ", "worker --queues otp ", "worker --queues bulk ",
                        "worker --queues poll ", "cli beat "))
    # when
    sent_at = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    # then it exits and nothing it started is left
    run.proc.communicate(timeout=PARENT_EXIT_S)
    assert _poll(lambda: not run.left(), timeout_s=CHILDREN_GONE_S), \
        "left running after the benchmark exited:\n" + "\n".join(run.left().values())
    print(f"nothing left {time.monotonic() - sent_at:.1f}s after the signal")


def test_a_stop_signal_swallowed_inside_a_finalizer_is_raised_again_by_the_wait_loop(tmp_path):
    # given a supervisor whose stop signal was raised inside a weakref.finalize callback, where Python prints the
    # exception ("Exception ignored in …") and goes on as if nothing happened
    import gc
    import weakref

    from msgrelay.cli.processes import Stopped, Supervisor

    class Pool:
        """Something collected later, with a finalizer (like urllib3's connection pools)."""

    with Supervisor(tmp_path / "logs") as sup:
        weakref.finalize(pool := Pool(), os.kill, os.getpid(), signal.SIGTERM)
        del pool
        gc.collect()  # the signal lands in the finalizer: swallowed there
        # when the wait loop looks at its children / then the stop comes through after all
        with pytest.raises(Stopped):
            for _ in range(50):
                sup.dead()
                time.sleep(0.01)
