"""A worker SIGKILLed in the middle of a job: nobody is sent twice, and the job completes on a new worker."""
from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.conftest import (
    CALLBACK_TOKEN, MMS_API_KEY, MMS_CALLBACK_TOKEN, SECRET_JOIN, SECRET_VOICE, SMS_PASSWORD, job_uid, wait_done,
    wait_until,
)

pytestmark = pytest.mark.e2e


def test_sigkill_mid_job_no_duplicates_and_job_completes(sim, worker):
    # given a slow provider and a 6,000-recipient job (12 requests) under way
    from tasks import submit
    sim.post("faults", {"latency_s": 0.4})
    done = submit("voice", "notify", [f"135{i:08d}" for i in range(6000)], content="通知")
    uid = job_uid(done.id)
    wait_until(lambda: len(sim.requests_for(uid)) >= 2, what="a couple of requests sent")
    # when the worker and its pool are killed at once, then a new one starts
    worker.kill()
    sent_before = len(sim.recipients(uid))
    assert sent_before < 6000
    worker.start()
    # then
    view = wait_done(done.id, timeout_s=120)
    accepted = Counter(sim.recipients(uid))
    assert set(accepted.values()) == {1}, "a recipient was sent twice"
    assert sim.get("stats")["duplicates"] == 0
    assert view["counts"]["queued"] == 0 and view["counts"]["unknown"] == 0
    assert sum(view["counts"].values()) == 6000


def test_secrets_never_in_logs_or_the_database(worker):
    # runs last in the e2e suite (files run in name order), when every process has logged its share
    from sqlalchemy import text as sql

    from models import get_engine
    from msgrelay.accounts import get_accounts
    secrets = {SECRET_VOICE, SECRET_JOIN, CALLBACK_TOKEN, SMS_PASSWORD, MMS_API_KEY, MMS_CALLBACK_TOKEN}
    for account in get_accounts().values():
        for field in ("secret_key", "password", "api_key", "callback_token"):
            if (value := getattr(account, field, None)) is not None:
                secrets.add(value.get_secret_value())
    logs = worker.log_text()
    assert len(logs) > 10_000, "the logs of worker, simulator and API should be here"
    leaked = [s for s in secrets if s in logs]
    assert not leaked
    with get_engine().connect() as conn:
        for table in ("job", "chunk", "message", "rawreport", "balancesnapshot", "inboundmessage", "template"):
            dump = " ".join(str(row) for row in conn.execute(sql(f"SELECT * FROM {table}")))
            assert not [s for s in secrets if s in dump], table


def test_sigkill_mid_mms_job_resends_lost_chunks_with_their_request_id(sim, worker, live_api):
    # given ihuyi pushes receipts to the running API, and a slow provider
    from sqlalchemy import select

    from models import Chunk, session_scope
    from tasks import submit
    from tests.e2e.conftest import MMS_CALLBACK_TOKEN
    base = f"{live_api}/callbacks/ihuyi/mms/{MMS_CALLBACK_TOKEN}"
    sim.post("ihuyi/push", {"api_id": "2RYN7CQHL1M", "receipt_url": f"{base}/receipt", "mo_rate": 0.0})
    sim.post("faults", {"latency_s": 1.5})
    phones = [f"134{i:08d}" for i in range(3000)]
    done = submit("mms", "mms", phones, content="周末特惠", options={"title": "特惠", "sign_name": "【互亿无线】"})
    # when the worker dies while a request is in flight
    def sending() -> bool:
        with session_scope() as session:
            return session.scalar(select(Chunk.id).where(Chunk.job_id == done.id, Chunk.status == "sending")) is not None
    wait_until(sending, what="a chunk in flight")
    worker.kill()
    worker.start()
    # then the lost chunk is re-sent with its own request id, nobody gets two, and every receipt lands
    view = wait_done(done.id, timeout_s=90)
    sent = Counter(r["mobile"] for req in sim.get("requests", endpoint="/mms/v1/batchSend") for r in req["recipients"])
    assert set(sent) == set(phones) and set(sent.values()) == {1}
    assert view["counts"]["unknown"] == 0 and view["counts"]["delivered"] + view["counts"]["failed"] == 3000
    with session_scope() as session:
        chunk = session.scalars(select(Chunk).where(Chunk.job_id == done.id)).one()
    assert chunk.attempts == 2 and chunk.error_code == "WORKER_LOST"  # re-sent by the sweeper, same request id
    repeats = [r for r in sim.get("ihuyi/requests") if r["request_id"] == chunk.request_id]
    assert 1 <= len(repeats) <= 2 and sum(not r["duplicate"] for r in repeats) == 1
