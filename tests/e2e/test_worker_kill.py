"""A worker SIGKILLed while the provider holds a request it has accepted (`answer_delay_s`): the lost chunk is
`WORKER_LOST`, its recipients are never sent twice and end as the provider's reports say, and the job
completes on a new worker."""
from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.e2e.conftest import (
    CALLBACK_TOKEN, MMS_API_KEY, MMS_CALLBACK_TOKEN, SECRET_JOIN, SECRET_VOICE, SMS_PASSWORD, Sim, Worker, chunk_rows,
    held_answers, job_uid, message_rows, wait_done, wait_until,
)

pytestmark = pytest.mark.e2e
ANSWER_DELAY_S = 1.5  # under the workers' 2 s read timeout (tests/conftest.py): a worker alive reads the answer
VOICE_STATUS = {"SUCCESS": "delivered", "TIMEOUT": "expired"}  # every other Emay voice state is a failure


def kill_while_held(sim: Sim, worker: Worker, job_id: int, endpoint: str, *,
                    timeout_s: float = 60) -> tuple[list[dict], list[int]]:
    """SIGKILL the worker at a moment when every chunk of the job it has in flight has its request held by the
    simulator (accepted and recorded, the answer not yet written); return those holds and the chunks in flight.

    The worker is frozen (SIGSTOP) before it is looked at, so what is seen is what the kill finds: an answer
    still held was never read, and a chunk in flight whose request had not reached the provider is excluded."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if held_answers(sim, endpoint):
            worker.freeze()
            try:
                holds = held_answers(sim, endpoint)
                in_flight = [c["id"] for c in chunk_rows(job_id) if c["status"] == "sending"]
            except BaseException:
                worker.thaw()  # never leave the session's worker stopped
                raise
            if holds and len(in_flight) == len(holds):
                worker.kill()
                return holds, in_flight
            worker.thaw()
        time.sleep(0.02)
    pytest.fail(f"no moment in {timeout_s}s when every chunk in flight had its request held by the provider")


def test_sigkill_while_the_provider_holds_a_request_leaves_it_unknown_settled_by_reports(sim, worker, live_api):
    # given a provider that records each request at once and answers it 1.5 s later, and pushes its reports to
    # the running API (a report page the provider handed to a poll the kill cut short, before the poll kept it,
    # is a loss this test is not about), and a 6,000-recipient job (12 requests of 500) under way
    from msgrelay.accounts import get_accounts
    from tasks import submit
    token = get_accounts()["pushed"].callback_token.get_secret_value()
    sim.post("push", {"app_id": "EUCP-EMY-TEST-PUSH", "url": f"{live_api}/callbacks/emay/pushed/{token}"})
    sim.post("faults", {"answer_delay_s": ANSWER_DELAY_S})
    done = submit("pushed", "notify", [f"135{i:08d}" for i in range(6000)], content="通知")
    uid = job_uid(done.id)
    wait_until(lambda: len(sim.requests_for(uid)) >= 3, what="a few requests sent")
    # when the worker and its pool are SIGKILLed while the provider holds every request they have in flight
    holds, in_flight = kill_while_held(sim, worker, done.id, "/voice/send")
    held_ids = {record_id for hold in holds for record_id in hold["record_ids"]}
    answered = [r for r in sim.requests_for(uid) if r["id"] not in held_ids]
    assert answered and len(answered) + len(held_ids) < 12, "killed mid-way: some answered, some held, some unsent"
    worker.start()
    # then the job completes (its messages may all be settled by reports before the sweeper, STALE_SENDING_S
    # later, has given up on the lost chunks)
    view = wait_done(done.id, timeout_s=120)
    wait_until(lambda: not [c for c in chunk_rows(done.id) if c["status"] == "sending"], what="the lost chunks decided")
    requests_ = sim.requests_for(uid)
    accepted = Counter(sim.recipients(uid))
    outcomes = {cid: state.strip() for cid, state in sim.get("outcomes")["by_custom_id"].items()
                if cid.startswith(uid)}
    # and exactly the chunks in flight were lost with the worker, and left `unknown` (never resent)
    lost = [c for c in chunk_rows(done.id) if c["error_code"] == "WORKER_LOST"]
    assert sorted(c["id"] for c in lost) == sorted(in_flight) and {c["status"] for c in lost} == {"unknown"}
    for chunk in lost:
        mine = message_rows(done.id, chunk["lo"], chunk["hi"])
        ids = {m["custom_id"] for m in mine}
        # one request carried its recipients, one the provider was holding at the kill, and no other did
        [carrier] = [r for r in requests_ if ids & {x["custom_id"] for x in r["recipients"]}]
        assert carrier["id"] in held_ids and {x["custom_id"] for x in carrier["recipients"]} == ids
        assert all(accepted[cid] == 1 for cid in ids)
        # and each of them ended as its own report says: settled by reports, not by expiry
        assert [(m["status"], m["provider_state"]) for m in mine] == [
            (VOICE_STATUS.get(outcomes[m["custom_id"]], "failed"), outcomes[m["custom_id"]]) for m in mine]
    # and every recipient of the job was accepted exactly once and ends as its report says
    assert len(accepted) == 6000 and set(accepted.values()) == {1}, "a recipient sent twice, or never"
    assert sim.get("stats")["duplicates"] == 0
    assert {k for k, v in view["counts"].items() if v} <= {"delivered", "failed", "expired"}
    untrue = [m for m in message_rows(done.id)
              if (m["status"], m["provider_state"]) != (VOICE_STATUS.get(outcomes[m["custom_id"]], "failed"),
                                                        outcomes[m["custom_id"]])]
    assert not untrue, f"{len(untrue)} messages do not say what their report says, e.g. {untrue[:3]}"


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
        for table in ("job", "chunk", "message", "rawreport", "reportpage", "balancesnapshot", "inboundmessage", "template"):
            dump = " ".join(str(row) for row in conn.execute(sql(f"SELECT * FROM {table}")))
            assert not [s for s in secrets if s in dump], table


def test_sigkill_while_ihuyi_holds_a_request_resends_it_with_the_same_request_id(sim, worker, live_api):
    # given ihuyi pushes receipts to the running API, and records each request at once but answers it 1.5 s later
    from tasks import submit
    base = f"{live_api}/callbacks/ihuyi/mms/{MMS_CALLBACK_TOKEN}"
    sim.post("ihuyi/push", {"api_id": "2RYN7CQHL1M", "receipt_url": f"{base}/receipt", "mo_rate": 0.0})
    sim.post("faults", {"answer_delay_s": ANSWER_DELAY_S})
    phones = [f"134{i:08d}" for i in range(3000)]
    done = submit("mms", "mms", phones, content="周末特惠", options={"title": "特惠", "sign_name": "【互亿无线】"})
    # when the worker dies while the provider holds the job's one request
    holds, in_flight = kill_while_held(sim, worker, done.id, "/mms/v1/batchSend")
    worker.start()
    # then the lost chunk was re-sent by the sweeper with its own request id
    view = wait_done(done.id, timeout_s=90)
    [chunk] = chunk_rows(done.id)
    assert in_flight == [chunk["id"]] and chunk["error_code"] == "WORKER_LOST" and chunk["attempts"] == 2
    tries = [r for r in sim.get("ihuyi/requests") if r["request_id"] == chunk["request_id"]]
    assert [r["duplicate"] for r in tries] == [False, True], "the same request_id reached the provider twice"
    # and ihuyi de-duplicated it: one request recorded (the one held at the kill), each phone accepted once,
    # and the retry learned the first try's task id
    [record] = sim.get("requests", endpoint="/mms/v1/batchSend")
    assert [hold["record_ids"] for hold in holds] == [[record["id"]]]
    sent = Counter(r["mobile"] for r in record["recipients"])
    assert set(sent) == set(phones) and set(sent.values()) == {1}
    assert chunk["provider_task_id"] == tries[0]["task_id"] == tries[1]["task_id"]
    # and every receipt landed
    assert view["counts"]["unknown"] == 0 and view["counts"]["delivered"] + view["counts"]["failed"] == 3000


def test_the_embedded_beat_keeps_its_schedule_in_the_file_it_was_given(worker):
    # the suite's two passes run their beats at once from one directory: neither may write the other's schedule
    assert sorted(p.name for p in worker.sup.log_dir.glob(f"beat-schedule-{worker.n}.*")), "no schedule file"
