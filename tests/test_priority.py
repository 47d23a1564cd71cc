"""A worker's `--nice`: its own niceness always; its session's (the kernel's autogroup) only when it leads one."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from msgrelay.cli.priority import AUTOGROUPS, session_niceness

SHOW = ("import os; from msgrelay.cli.priority import lower_priority, session_niceness; before = session_niceness(); "
        "said = lower_priority(7); print(before, '|', said, '|', os.getpriority(os.PRIO_PROCESS, 0), '|', "
        "session_niceness())")


@pytest.mark.parametrize("leads_session", [True, False], ids=["leads its session", "shares a session"])
def test_lower_priority(leads_session):
    # given this test's session (None without kernel support, or in init's session, as in a container)
    ours = session_niceness()
    # when a process lowers its priority, in a session of its own or in this one
    out = subprocess.run([sys.executable, "-c", SHOW], capture_output=True, text=True, check=True, timeout=60,
                         start_new_session=leads_session, cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    before, said, nice, after = (part.strip() for part in out.split("|"))
    # then its own niceness always; its session's only when it leads one that autogroups share the CPU by
    assert int(nice) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)
    sets_session = leads_session and AUTOGROUPS  # a new session always gets an autogroup of its own
    assert said == ("niceness 7, its session's too" if sets_session else "niceness 7")
    assert after == ("7" if sets_session else before)
    assert session_niceness() == ours  # this test's own session untouched either way
    if not leads_session:
        assert before == str(ours)
