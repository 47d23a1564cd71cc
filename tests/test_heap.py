"""Full garbage collections skip what lives for the whole process: start-up's objects (msgrelay's processes) and,
in the simulator, the records it keeps of every accepted request. Each case runs in a process of its own."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

AFTER_START = """
import gc
import api.app, tasks  # what the API imports
from msgrelay.heap import freeze_after_start
frozen = freeze_after_start()
print(frozen, len(gc.get_objects(2)))
"""

SURVIVORS = """
import gc
from providers.simulator.app import freeze_survivors
gc.freeze(); before = gc.get_freeze_count()
gc.callbacks.append(freeze_survivors)
kept = [{"mobile": str(i), "at": [i]} for i in range(200_000)]  # records the simulator keeps, as it keeps them
for _ in range(3):
    gc.collect(1)
print(gc.get_freeze_count() - before, len(gc.get_objects(2)))
"""


def _run(code: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    frozen, left = out.stdout.split()
    return int(frozen), int(left)


@pytest.mark.parametrize("code, at_least", [(AFTER_START, 100_000), (SURVIVORS, 400_000)],
                         ids=["msgrelay start-up", "simulator records"])
def test_a_full_collection_scans_only_what_is_not_frozen(code, at_least):
    frozen, left_to_scan = _run(code)
    assert frozen >= at_least
    assert left_to_scan < 1_000  # the oldest generation holds what a full collection still walks
