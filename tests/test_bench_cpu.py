"""The benchmarks' CPU count: a process that exits still counts, through its parent (as PostgreSQL's backends of
closed connections do through the postmaster)."""
from __future__ import annotations

import subprocess
import sys

from benchmarks.harness import cpu_seconds

#: a parent that starts a child burning ~0.5 s of CPU, waits for it (the child is gone), then sleeps
PARENT = ("import subprocess, sys, time; subprocess.run([sys.executable, '-c', "
          "'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.5: pass']); "
          "print('reaped', flush=True); time.sleep(30)")


def test_a_child_that_exited_still_counts():
    # given a process group whose one child has used ~0.5 s of CPU and exited
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        assert parent.stdout.readline().strip() == "reaped"
        # when the group's CPU is counted, then the child's time is in it
        assert cpu_seconds(pgid=parent.pid) >= 0.45
    finally:
        parent.kill()
        parent.wait()
