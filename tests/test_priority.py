"""A worker's `--nice`: its own niceness always; its session's (the kernel's autogroup) only when it leads one."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

AUTOGROUP = Path("/proc/self/autogroup")
SHOW = ("import os, pathlib; from msgrelay.cli.priority import lower_priority; said = lower_priority(7); "
        "group = pathlib.Path('/proc/self/autogroup'); "
        "print(said, '|', os.getpriority(os.PRIO_PROCESS, 0), '|', group.read_text().split()[-1] if group.exists() else '-')")


def _session_nice() -> str:
    return AUTOGROUP.read_text().split()[-1] if AUTOGROUP.exists() else "-"


@pytest.mark.parametrize("leads_session, says, session_nice", [
    (True, "niceness 7, its session's too", "7"),
    (False, "niceness 7", None),  # None: the session it shares (this test's) is left as it was
], ids=["leads its session", "shares a session"])
def test_lower_priority(leads_session, says, session_nice):
    if leads_session and not AUTOGROUP.exists():
        says, session_nice = "niceness 7", "-"  # a kernel without autogroups: the process's niceness only
    before = _session_nice()
    out = subprocess.run([sys.executable, "-c", SHOW], capture_output=True, text=True, check=True, timeout=60,
                         start_new_session=leads_session, cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    said, nice, group = (part.strip() for part in out.split("|"))
    assert (said, int(nice)) == (says, min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7))
    assert group == (session_nice if session_nice is not None else before)
    assert _session_nice() == before  # this test's own session untouched either way
