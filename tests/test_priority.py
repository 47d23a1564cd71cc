"""A process's `--nice`: its own niceness always, its session's (the kernel's autogroup) only when it leads one;
raising needs CAP_SYS_NICE, and a process without it stays where it was and says so."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from msgrelay.cli.priority import AUTOGROUPS, renice, session_niceness

ROOT = Path(__file__).resolve().parents[1]
SHOW = ("import os; from msgrelay.cli.priority import change_priority, session_niceness; before = session_niceness(); "
        "said = change_priority({nice}); print(before, '|', said, '|', os.getpriority(os.PRIO_PROCESS, 0), '|', "
        "session_niceness())")
#: run as nobody: no CAP_SYS_NICE
UNPRIVILEGED = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
privileged = os.geteuid() == 0


def run_show(nice: int, *, leads_session: bool, as_nobody: bool = False) -> tuple[str, str, int, str]:
    """What a new process that changes its priority by `nice` prints: its session's niceness before, what
    change_priority said, its niceness after and its session's after."""
    argv = [*(UNPRIVILEGED if as_nobody else []), sys.executable, "-c", SHOW.format(nice=nice)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60,
                         start_new_session=leads_session, cwd=ROOT).stdout.strip()
    before, said, niceness, after = (part.strip() for part in out.split("|"))
    return before, said, int(niceness), after


@pytest.mark.parametrize("leads_session", [True, False], ids=["leads its session", "shares a session"])
def test_lower_priority(leads_session):
    # given this test's session (None without kernel support, or in init's session, as in a container)
    ours = session_niceness()
    # when a process lowers its priority, in a session of its own or in this one
    before, said, nice, after = run_show(7, leads_session=leads_session)
    # then its own niceness always; its session's only when it leads one that autogroups share the CPU by
    assert nice == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)
    sets_session = leads_session and AUTOGROUPS  # a new session always gets an autogroup of its own
    assert said == ("niceness 7, its session's too" if sets_session else "niceness 7")
    assert after == ("7" if sets_session else before)
    assert session_niceness() == ours  # this test's own session untouched either way
    if not leads_session:
        assert before == str(ours)


@pytest.mark.skipif(not privileged, reason="raising a priority needs CAP_SYS_NICE (root here)")
def test_raise_priority_with_cap_sys_nice():
    # when a process that may (root) raises its priority in a session of its own
    _, said, nice, after = run_show(-5, leads_session=True)
    # then it runs raised, and so does its session
    assert nice == os.getpriority(os.PRIO_PROCESS, 0) - 5
    assert said == ("niceness -5, its session's too" if AUTOGROUPS else "niceness -5")
    assert after == ("-5" if AUTOGROUPS else "None")


@pytest.mark.skipif(not privileged, reason="needs root to run a process as nobody")
def test_raise_priority_without_cap_sys_nice_stays_and_says_so():
    # when a process that may not raise its priority asks to
    before, said, nice, after = run_show(-5, leads_session=True, as_nobody=True)
    # then it goes on where it was, and says why
    assert said == "niceness unchanged (raising it by 5 needs CAP_SYS_NICE)"
    assert nice == os.getpriority(os.PRIO_PROCESS, 0)
    assert after == before


THREADED = ("import threading, time; [threading.Thread(target=time.sleep, args=(60,), daemon=True).start() "
            "for _ in range(2)]; print('ready', flush=True); time.sleep(60)")


def start_threaded(*, leads_session: bool) -> subprocess.Popen:
    """A process of three threads (as a server is: Redis starts its background threads at once)."""
    proc = subprocess.Popen([sys.executable, "-c", THREADED],
                            stdout=subprocess.PIPE, text=True, start_new_session=leads_session)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def thread_niceness(pid: int) -> set[int]:
    """The niceness of each of a process's threads."""
    return {os.getpriority(os.PRIO_PROCESS, int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()}


@pytest.mark.parametrize(("case", "nice", "leads_session", "said", "threads", "session"), [
    ("lowered, leading its session", 7, True, "niceness 7, its session's too", 7, "7"),
    ("lowered, sharing a session", 7, False, "niceness 7", 7, "ours"),
    ("raised, leading its session", -5, True, "niceness -5, its session's too", -5, "-5"),
], ids=lambda v: v if isinstance(v, str) and " " in v else "")
@pytest.mark.skipif(not privileged, reason="raising another process's priority needs CAP_SYS_NICE (root here)")
def test_renice_another_process(case, nice, leads_session, said, threads, session):
    # given a running process of three threads
    proc = start_threaded(leads_session=leads_session)
    ours = session_niceness()
    try:
        # when its parent gives it a niceness
        told = renice(proc.pid, nice)
        # then every thread has it, and its session too where it leads one (never a session it shares)
        assert told == (said if AUTOGROUPS or not leads_session else f"niceness {nice}")
        assert thread_niceness(proc.pid) == {threads}
        if session == "ours":
            assert session_niceness(proc.pid) == ours
        elif AUTOGROUPS:
            assert session_niceness(proc.pid) == int(session)
        assert session_niceness() == ours
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not privileged, reason="needs root to run a process as nobody")
def test_renice_without_cap_sys_nice_leaves_the_process_and_says_so():
    # given a process of nobody's, and a parent of nobody's that asks to raise it
    code = ("import subprocess; from msgrelay.cli.priority import renice; "
            "p = subprocess.Popen(['sleep', '60'], start_new_session=True); print(renice(p.pid, -5)); p.kill()")
    # when it runs
    out = subprocess.run([*UNPRIVILEGED, sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60, cwd=ROOT).stdout.strip()
    # then nothing changed, and it says why
    assert out == "niceness unchanged (raising it by 5 needs CAP_SYS_NICE)"


def test_renice_a_process_that_has_ended_says_so():
    # given a process that has ended (a server that could not start)
    proc = subprocess.Popen(["true"], start_new_session=True)
    proc.wait()
    # when its parent gives it a niceness, then it is told so, and nothing fails
    assert renice(proc.pid, 5) == "niceness unchanged (the process has ended)"
