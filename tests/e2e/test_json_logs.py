"""JSON logs end to end (issue 13): a real worker with MSGRELAY_LOG_FORMAT=json sends a job through the simulator;
every line it logs is a JSON object, its send lines carry the job's and chunks' ids, and no secret of the accounts
file appears."""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from msgrelay.cli.processes import Supervisor
from tests.e2e.conftest import Worker, chunk_rows, mobiles, wait_done

pytestmark = pytest.mark.e2e
#: what Celery writes straight to the terminal, past logging (a JSON worker's banner is switched off)
CELERY_DIRECT = re.compile(r"^worker: (Warm|Cold) shutdown \(MainProcess\)$")


def secrets_of(accounts_file: str) -> set[str]:
    """Every secret value written in the accounts file: secret keys, API keys, passwords, callback tokens."""
    text = Path(accounts_file).read_text(encoding="utf-8")
    return set(re.findall(r'^(?:secret_key|api_key|password|callback_token) = "([^"]+)"$', text, re.MULTILINE))


@pytest.fixture
def json_worker(worker: Worker, tmp_path: Path) -> Iterator[Worker]:
    """The suite's worker stopped (warm shutdown) and a JSON one in its place; the suite's worker again after."""
    proc = worker.sup.children.pop(f"worker{worker.n}")
    proc.terminate()
    proc.wait(timeout=30)
    replacement = Worker(Supervisor(tmp_path / "logs"), {**worker.env, "MSGRELAY_LOG_FORMAT": "json"})
    try:
        replacement.start()
        yield replacement
    finally:
        replacement.sup.stop_all(timeout_s=10)
        worker.start()


def test_worker_logs_json_lines_with_job_and_chunk_ids_and_no_secret(api, sim, json_worker):
    # given: 450 recipients on an account of 200 per request: three chunks
    answer = api.post("/v1/jobs", json={"account": "sms200", "kind": "sms", "content": "【测试】日志 JSON",
                                        "recipients": mobiles("137", 450)})
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    # when
    wait_done(job_id)
    json_worker.sup.stop_all(timeout_s=10)  # everything it had to say is written
    # then: every line is one JSON object
    text = json_worker.log_text()
    lines = [line for line in text.splitlines() if line.strip() and not CELERY_DIRECT.match(line)]
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message", "process"} <= set(r) for r in records)
    assert any(r["message"].endswith(" ready.") for r in records)
    # the send lines carry the job, its chunks, the account and the task
    chunk_ids = {c["id"] for c in chunk_rows(job_id)}
    sends = [r for r in records if r.get("task") == "tasks.send_chunk" and r.get("job_id") == job_id]
    assert {r["chunk_id"] for r in sends} == chunk_ids and len(chunk_ids) == 3
    assert all(r["account"] == "sms200" and r["task_id"] for r in sends)
    # and no secret of the accounts file, anywhere
    leaked = {s for s in secrets_of(os.environ["MSGRELAY_ACCOUNTS_FILE"]) if s in text}
    assert not leaked, leaked
