"""`msgrelay demo --exit` on a machine with nothing configured: embedded Redis, SQLite, simulator, summary."""
from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_runs_every_kind_and_prints_the_summary(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGRELAY_")}
    env["COLUMNS"] = "160"
    out = subprocess.run([sys.executable, "-m", "msgrelay.cli", "demo", "--exit", "--recipients", "1200",
                          "--workdir", str(tmp_path / "demo")], env=env, capture_output=True, text=True,
                         timeout=400, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "embedded Redis at redis://127.0.0.1:" in text and ":6379/" not in text
    rows = {m.group(1): m.group(0) for m in re.finditer(
        r"│ \d+\s+│ \w+\s+│ (notify|marketing|voice_sms|vfcode|ims|sms|mms)\b.*", text)}
    assert set(rows) == {"notify", "marketing", "voice_sms", "vfcode", "ims", "sms", "mms"}
    assert all("│ done" in row for row in rows.values())
    assert "0 duplicates" in text
    assert re.search(r"MMS template \d+ audited by push: approved", text)
    assert "inbound messages" in text and re.search(r"│ sms\s+│ 188\d{8}", text), "no 企业信使 reply shown"
    assert re.search(r"│ mms\s+│ 13[56]\d{8}", text), "no MMS reply shown"
    assert re.search(r"API\s+http://127\.0\.0\.1:\d+/docs", text) and re.search(r"Flower http://127\.0\.0\.1:\d+", text)
