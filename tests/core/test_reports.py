"""Reports against the database, Redis and the simulator: matched within their own account, kept before they
are parsed, never lost to one bad row, and able to settle a request whose answer was lost."""
from __future__ import annotations

import json

import threading
import time
from collections import Counter
from datetime import datetime, timezone

import pytest
import redis
from sqlalchemy import update

from models import Chunk, Message, RawReport, ReportPage, session_scope
from models.statuses import ChunkStatus, MessageStatus
from msgrelay.reports import ingest, match_reports, poll_reports
from msgrelay.send import send_chunk
from msgrelay.spool import KeptOnDisk, Spool
from providers.base import HttpResponse, Report
from providers.errors import TransientError
from tests.core.conftest import execute, mobiles, rows, submit


def report(pid: str | None, *, custom_id: str | None = None, mobile: str = "13800000000", raw: dict | None = None,
           status: MessageStatus = MessageStatus.DELIVERED) -> Report:
    """One delivered report as a provider module would parse it."""
    return Report(status=status, state="SUCCESS", desc=None, provider_msg_id=pid, custom_id=custom_id,
                  mobile=mobile, reported_at=None, raw=raw or {"voiceId": pid})


def test_a_report_settles_only_its_own_accounts_message(sim, accounts, settings):
    # given: a sent message of account `voice`, and the very same report (its ids and mobile) from account `voice_b`
    done, published = submit(accounts, "voice", "notify", mobiles(1), content="您好")
    send_chunk(published[0][0], settings=settings, accounts=accounts)
    (message,) = rows(Message, job_id=done.id)
    foreign = report(message.provider_msg_id, custom_id=message.custom_id, mobile=message.mobile)
    # when / then: the other account's report matches nothing and changes nothing
    assert ingest(accounts["voice_b"], [foreign], "push") == 0
    assert rows(Message, id=message.id)[0].status == MessageStatus.SUBMITTED
    # and the account's own report settles it
    assert ingest(accounts["voice"], [foreign], "push") == 1
    assert rows(Message, id=message.id)[0].status == MessageStatus.DELIVERED


def test_one_bad_row_does_not_lose_the_page(sim, accounts):
    # given: a page with an over-long id, a lone surrogate and a NUL in the raw record, and a good report
    done, published = submit(accounts, "voice", "notify", mobiles(1), content="您好")
    (message,) = rows(Message, job_id=done.id)
    page = [report("9" * 300, mobile="1" * 50, raw={"voiceId": "9" * 300, "note": "bad \ud800 and \x00"}),
            report(None, custom_id=message.custom_id, mobile=message.mobile)]
    # when
    matched = ingest(accounts["voice"], page, "poll")
    # then: both are kept (the odd one clipped and cleaned), the good one is applied
    assert matched == 1 and rows(Message, id=message.id)[0].status == MessageStatus.DELIVERED
    with session_scope() as session:
        odd = session.query(RawReport).filter(RawReport.provider_msg_id == "9" * 64).one()
    assert len(odd.mobile) == 32 and "\x00" not in odd.payload["note"]
    assert [r.get("note") for r in rows(ReportPage)[-1].reports] == [odd.payload["note"], None]  # the page as well


def test_a_kept_page_survives_a_failed_store_and_is_ingested_next_time():
    # given: two fetched pages kept in the spool, and a store that fails on the first try
    spool = Spool(f"spool-test-{time.time_ns()}", "reports")
    spool.keep(HttpResponse(200, "page-1"))
    spool.keep(HttpResponse(200, "page-2"))
    stored: list[str] = []
    fail = [True]

    def store(items: list[str]) -> None:
        if fail.pop(0) if fail else False:
            raise ConnectionError("database went away")
        stored.extend(items)

    def parse(response: HttpResponse) -> list[str]:
        return [response.text]

    # when: the database fails while the first page is stored
    with pytest.raises(ConnectionError):
        spool.drain(parse, store)
    # then: nothing was lost, and the next drain ingests both, oldest first
    assert len(spool) == 2 and stored == []
    assert spool.drain(parse, store) == [1, 1] and stored == ["page-1", "page-2"] and len(spool) == 0


PULL_CASES = [  # (what fails, on which call, the answers left kept, what was stored, what pull raises)
    ("nothing", None, 0, 24, None),
    ("the store of the second batch", ("store", 2), "tail", None, ConnectionError),
    ("the fourth fetch (provider or Redis gone)", ("fetch", 4), 0, 15, TransientError),
]


@pytest.mark.parametrize(("what", "failure", "left", "stored_n", "raised"), PULL_CASES, ids=[c[0] for c in PULL_CASES])
def test_pull_keeps_every_answer_until_its_batch_is_stored(what, failure, left, stored_n, raised):
    # given five pages of five items (the last one short: four), fetched in order by `pull`
    spool = Spool(f"spool-test-{time.time_ns()}", "reports")
    pages = [[f"p{p}-{i}" for i in range(5 if p < 4 else 4)] for p in range(5)]
    calls = {"fetch": 0, "store": 0}
    stored: list[str] = []
    lock = threading.Lock()

    def fetch() -> HttpResponse:
        calls["fetch"] += 1
        if failure == ("fetch", calls["fetch"]):
            raise TransientError("CONNECTION_LOST", "gone")
        return HttpResponse(200, json.dumps(pages[calls["fetch"] - 1]))

    def store(items: list[str]) -> None:
        with lock:
            calls["store"] += 1
            n = calls["store"]
        time.sleep(0.05 if n == 1 else 0)  # the first batch is slow: later ones finish before it
        if failure == ("store", n):
            raise ConnectionError("database went away")
        with lock:
            stored.extend(items)

    # when (batches of at most five items: one page each)
    try:
        sizes = spool.pull(fetch, lambda r: json.loads(r.text), store, pages=10, page_size=5, batch_items=5)
    except Exception as exc:
        assert raised is not None and isinstance(exc, raised), exc
    else:
        assert raised is None and sizes == [5, 5, 5, 5, 4]
    # then: an answer leaves the spool only when its batch and every batch before it are stored
    if left == "tail":  # the second batch failed: it and everything fetched after it are still kept
        kept = [json.loads(json.loads(x)["text"])[0] for x in spool.client.lrange(spool.key, 0, -1)]
        assert kept and kept[0] == "p1-0" and "p0-0" in stored
        assert spool.drain(lambda r: json.loads(r.text), stored.extend) and len(spool) == 0
        assert sorted(set(stored)) == sorted(x for p in pages for x in p)  # everything, once or twice
    else:
        assert len(spool) == left and len(stored) == stored_n and len(set(stored)) == stored_n


def test_a_kept_answer_that_is_an_error_is_dropped():
    spool = Spool(f"spool-test-{time.time_ns()}", "reports")
    spool.keep(HttpResponse(200, "refused"))

    def parse(response: HttpResponse) -> list[str]:
        raise TransientError("ERROR_SIGN", "not a page")

    assert spool.drain(parse, lambda items: None) == [] and len(spool) == 0


def test_an_unknown_qyxs_request_learns_its_task_id_from_its_reports(sim, accounts, settings):
    # given: an SMS chunk accepted by the platform whose answer never came (ambiguous → unknown)
    people = mobiles(5)
    done, published = submit(accounts, "sms", "sms", people, content="您好")
    sim.faults(stall_after_accept_rate=1.0, stall_s=settings.http_read_timeout_s + 1)
    send_chunk(published[0][0], settings=settings, accounts=accounts)
    sim.faults()
    (chunk,) = rows(Chunk, job_id=done.id)
    assert chunk.status == ChunkStatus.UNKNOWN and chunk.provider_task_id is None
    # when: its reports come (they name the task and each mobile) and are polled
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        poll_reports(accounts["sms"], settings)
        statuses = Counter(m.status for m in rows(Message, job_id=done.id))
        if MessageStatus.UNKNOWN not in statuses:
            break
        time.sleep(0.2)
    # then: the chunk learned the task id, and every message is settled by its report
    (chunk,) = rows(Chunk, job_id=done.id)
    assert chunk.provider_task_id is not None
    assert set(statuses) <= {MessageStatus.DELIVERED, MessageStatus.FAILED}, statuses
    assert all(m.provider_msg_id == f"{chunk.provider_task_id}:{m.mobile}" for m in rows(Message, job_id=done.id))


def test_a_task_id_two_unknown_chunks_could_own_is_not_guessed(sim, accounts, settings):
    # given: two unknown SMS chunks holding the same mobile (two jobs), and reports of one task for that mobile
    mobile = mobiles(1)
    jobs = [submit(accounts, "sms", "sms", mobile, content=f"第{i}条")[0] for i in range(2)]
    for job in jobs:
        execute(update(Chunk).where(Chunk.job_id == job.id).values(status=ChunkStatus.UNKNOWN))
        execute(update(Message).where(Message.job_id == job.id).values(status=MessageStatus.UNKNOWN))
    # when
    ingest(accounts["sms"], [report(f"T-AMBIG:{mobile[0]}", mobile=mobile[0])], "poll")
    poll_reports(accounts["sms"], settings)
    # then: neither learns it; both stay unknown
    for job in jobs:
        assert [c.provider_task_id for c in rows(Chunk, job_id=job.id)] == [None]
        assert {m.status for m in rows(Message, job_id=job.id)} == {MessageStatus.UNKNOWN}


@pytest.mark.parametrize("by", ["custom id", "provider id and mobile"])
def test_a_batch_above_the_probe_size_settles_every_message_and_leaves_the_planner_as_it_was(sim, accounts, by):
    # given: 1,500 submitted messages (more than models.bulk._PROBE_ABOVE: lookups and updates probe the key), of
    # an account whose reports name our custom id (Emay) or a request and a mobile (qyxs)
    from sqlalchemy import text

    from models import bulk
    account, kind = ("voice", "notify") if by == "custom id" else ("sms", "sms")
    done, _ = submit(accounts, account, kind, mobiles(1_500), content="您好")
    execute(update(Message).where(Message.job_id == done.id).values(status=MessageStatus.SUBMITTED,
                                                                    provider_msg_id="P" + Message.custom_id))
    messages = rows(Message, job_id=done.id)
    assert len(messages) > bulk._PROBE_ABOVE
    customs = [m.custom_id for m in messages] if by == "custom id" else []
    answered = [] if customs else [(m.mobile, m.provider_msg_id) for m in messages]
    # when: one batch of their reports
    matched = ingest(accounts[account], [report(None if customs else m.provider_msg_id,
                                                custom_id=m.custom_id if customs else None, mobile=m.mobile)
                                         for m in messages], "poll")
    # then: every one is found and settled
    assert matched == 1_500
    assert {m.status for m in rows(Message, job_id=done.id)} == {MessageStatus.DELIVERED}
    # and on PostgreSQL no whole-table scan inside, the planner's own choice again after, in one transaction
    with session_scope() as session:
        found = bulk.find_messages(session, customs, answered)
        if session.get_bind().dialect.name != "postgresql":
            assert len(found) == 1_500
            return
        cur = session.connection().connection.driver_connection.cursor()
        with bulk._by_key(cur, 1_500):
            inside = session.execute(text("SHOW enable_seqscan")).scalar()
            # the statement's triggers join its old and new rows (no index on them): hash joins stay on
            hashing = session.execute(text("SHOW enable_hashjoin")).scalar()
        after = session.execute(text("SHOW enable_seqscan")).scalar()
    assert (inside, hashing, after, len(found)) == ("off", "on", "on", 1_500)


D, F, U = MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.UNKNOWN
#: (case, the reports of one message in one batch as (status, state), the change written as (status, state))
LAST_WORDS = [
    ("one report", [(D, "DELIVRD")], ("delivered", "DELIVRD")),
    ("the first final one stays", [(D, "DELIVRD"), (F, "UNDELIV")], ("delivered", "DELIVRD")),
    ("a state no map knows keeps the status", [(U, "ODD")], (None, "ODD")),
    ("and is then replaced", [(U, "ODD"), (F, "UNDELIV")], ("failed", "UNDELIV")),
    ("but cannot undo a final one", [(F, "UNDELIV"), (U, "ODD")], ("failed", "UNDELIV")),
]


@pytest.mark.parametrize(("case", "said", "written"), LAST_WORDS, ids=[c[0] for c in LAST_WORDS])
@pytest.mark.parametrize("named_by", ["custom id", "mobile and provider id"])
def test_a_messages_reports_in_one_batch_come_down_to_one_change(case, said, written, named_by):
    from msgrelay.reports import last_words
    custom_id, key = ("c-1", "c-1") if named_by == "custom id" else (None, ("13800000000", "T-1:13800000000"))
    items = [Report(status=status, state=state, desc=None, provider_msg_id="T-1:13800000000", custom_id=custom_id,
                    mobile=None, reported_at=None, raw={}) for status, state in said]
    keys, by_custom, by_answer = last_words(items, now=None)
    assert keys == [key] * len(said)
    assert {k: v[:2] for k, v in (by_custom or by_answer).items()} == {key: written}


def test_every_report_of_a_batch_is_matched_even_where_nothing_changes(sim, accounts):
    # given: two submitted messages, and one delivered already
    done, _ = submit(accounts, "voice", "notify", mobiles(3), content="您好")
    first, second, final = rows(Message, job_id=done.id)
    execute(update(Message).where(Message.job_id == done.id).values(status=MessageStatus.SUBMITTED))
    execute(update(Message).where(Message.id == final.id).values(status=MessageStatus.DELIVERED))
    # when: one batch says the first is failed then delivered, the second delivered, the final one failed
    page = [report(None, custom_id=first.custom_id, status=F), report(None, custom_id=first.custom_id),
            report(None, custom_id=second.custom_id), report(None, custom_id=final.custom_id, status=F)]
    matched = ingest(accounts["voice"], page, "poll")
    # then: each report is kept matched to its message, and only the first final word of each was written
    assert matched == 4
    assert {m.id: m.status for m in rows(Message, job_id=done.id)} == {
        first.id: MessageStatus.FAILED, second.id: MessageStatus.DELIVERED, final.id: MessageStatus.DELIVERED}
    assert rows(ReportPage)[-1].message_ids == [first.id, first.id, second.id, final.id]


def test_a_batch_is_kept_as_one_page_and_what_matched_nothing_also_waits_as_a_raw_row(sim, accounts):
    # given: a message whose answer is recorded, and one whose answer is not yet (of a provider whose reports name
    # no custom id: found by mobile and provider id)
    done, _ = submit(accounts, "sms", "sms", mobiles(2), content="您好")
    known, later = rows(Message, job_id=done.id)
    ids = [f"T-{time.time_ns()}-{n}" for n in (1, 2)]
    execute(update(Message).where(Message.id == known.id).values(status=MessageStatus.SUBMITTED,
                                                                 provider_msg_id=ids[0]))
    records = [{"taskID": ids[0], "status": " 10 ", "n": 1}, {"taskID": ids[1], "status": " 10 ", "n": 2}]
    page = [report(pid, mobile=m.mobile, raw=raw) for pid, m, raw in zip(ids, (known, later), records)]
    # when
    assert ingest(accounts["sms"], page, "poll") == 1
    # then: one page holds both records as received, in order, with the message each settled
    kept = rows(ReportPage)[-1]
    assert (kept.account, kept.provider, kept.source, kept.size) == ("sms", accounts["sms"].provider, "poll", 2)
    assert kept.reports == records and kept.message_ids == [known.id, None]
    # and only the one that matched nothing waits as a raw row
    assert [r.provider_msg_id for r in rows(RawReport, provider_msg_id=ids[0])] == []
    (waiting,) = rows(RawReport, provider_msg_id=ids[1])
    assert (waiting.matched, waiting.message_id, waiting.payload) == (False, None, records[1])
    # when its answer is recorded and the account's reports are matched again
    execute(update(Message).where(Message.id == later.id).values(status=MessageStatus.SUBMITTED,
                                                                 provider_msg_id=ids[1]))
    with session_scope() as session:
        assert match_reports(session, account="sms") >= 1
    # then it settles its message
    assert (rows(RawReport, id=waiting.id)[0].message_id, rows(Message, id=later.id)[0].status) == (
        later.id, MessageStatus.DELIVERED)


def test_a_batch_that_fails_to_settle_is_kept_whole_and_every_report_waits(sim, accounts, monkeypatch):
    # given: settling fails (a fault injected into it: nothing in the real parts makes it fail on purpose)
    def broken(*_: object) -> list:
        raise RuntimeError("settling failed")
    monkeypatch.setattr("msgrelay.reports.settle", broken)
    ids = [f"V-{time.time_ns()}-{n}" for n in (1, 2)]
    # when
    assert ingest(accounts["voice"], [report(pid) for pid in ids], "push") == 0
    # then: the page is kept with no message settled, and each report waits for the next match
    kept = rows(ReportPage)[-1]
    assert (kept.size, kept.source, kept.reports, kept.message_ids) == (
        2, "push", [{"voiceId": pid} for pid in ids], [None, None])
    assert [len(rows(RawReport, provider_msg_id=pid, matched=False)) for pid in ids] == [1, 1]


#: (case, the message's provider id, the report's provider id and mobile field, which message it settles)
BY_PROVIDER_ID = [
    ("the id and the report's mobile", "P-1", "P-1", "its own", "first"),
    ("a task:mobile id, no mobile field (found by the id's mobile)", "T-1:{mobile}", "T-1:{mobile}", None, "first"),
    ("the same mobile's other message, by its id", "P-1", "P-2", "its own", "second"),
    ("an id it does not hold", "P-1", "P-3", "its own", None),
    ("the id with another mobile", "P-1", "P-1", "13900000000", None),
    ("a plain id and no mobile: matched by custom id only", "P-1", "P-1", None, None),
]


@pytest.mark.parametrize(("case", "pid", "reported", "mobile", "settles"), BY_PROVIDER_ID,
                         ids=[c[0] for c in BY_PROVIDER_ID])
def test_a_report_without_custom_id_is_found_by_its_mobile_and_provider_id(sim, accounts, case, pid, reported,
                                                                          mobile, settles):
    # given: one mobile in two jobs of a provider whose ids name requests, each message with its provider id (the
    # first one's per case)
    number = mobiles(1)
    first, second = (rows(Message, job_id=submit(accounts, "sms", "sms", number, content="您好")[0].id)[0]
                     for _ in range(2))
    for message, its_pid in ((first, pid.format(mobile=number[0])), (second, "P-2")):
        execute(update(Message).where(Message.id == message.id).values(status=MessageStatus.SUBMITTED,
                                                                       provider_msg_id=its_pid))
    # when: a report that names no custom id comes
    page = [report(reported.format(mobile=number[0]), mobile=number[0] if mobile == "its own" else mobile)]
    matched = ingest(accounts["sms"], page, "push")
    # then: it settles the message it names, and only that one
    delivered = {m.id for m in rows(Message, status=MessageStatus.DELIVERED) if m.id in (first.id, second.id)}
    expected = {"first": {first.id}, "second": {second.id}, None: set()}[settles]
    assert (matched, delivered) == (len(expected), expected)


def test_only_messages_whose_reports_name_no_custom_id_are_indexed_by_mobile(sim, accounts):
    # given: a job of a provider whose ids name requests (qyxs) and one whose reports carry our custom id (Emay)
    from sqlalchemy import select, text

    from models import bulk
    by_task, _ = submit(accounts, "sms", "sms", mobiles(2), content="您好")
    by_custom, _ = submit(accounts, "voice", "notify", mobiles(2), content="您好")
    # then: only the first job's messages are found by mobile
    assert [m.found_by_mobile for m in rows(Message, job_id=by_task.id)] == [True, True]
    assert [m.found_by_mobile for m in rows(Message, job_id=by_custom.id)] == [False, False]
    # and both statements that look a report up by mobile and provider id (find, then apply) can walk the partial
    # index, on either database (PostgreSQL told to probe, as a big batch is: a scan is the only other way)
    mobile, pid = "13800000000", "T-1:13800000000"
    with session_scope() as session:
        if session.get_bind().dialect.name == "postgresql":
            cur = session.connection().connection.driver_connection.cursor()
            columns = ("mobile", "provider_msg_id", "status", "provider_state", "provider_desc", "reported_at")
            now = datetime.now(timezone.utc)
            with bulk._by_key(cur, bulk._PROBE_ABOVE + 1):
                plans = [cur.execute("EXPLAIN " + bulk.BY_ANSWER, [[mobile], [pid]]).fetchall(),
                         cur.execute("EXPLAIN " + bulk.reports_statement(session, columns, bulk.BY_ANSWER_MATCH,
                                                                         "'submitted'"),
                                     [[mobile], [pid], ["delivered"], ["10"], ["-"], [now], now, "sms", "sms"])
                         .fetchall()]
        else:
            found = select(Message.id).where(Message.mobile.in_([mobile]), text("message.found_by_mobile"),
                                             Message.provider_msg_id.in_([pid]))
            found = found.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
            applied = "SELECT t.id FROM message AS t WHERE " + bulk.BY_ANSWER_MATCH.replace("v.", ":")
            plans = [session.execute(text(f"EXPLAIN QUERY PLAN {found}")).all(),
                     session.execute(text(f"EXPLAIN QUERY PLAN {applied}"),
                                     {"mobile": mobile, "provider_msg_id": pid}).all()]
    for plan in plans:
        assert "ix_message_found_by_mobile" in " ".join(str(row[-1]) for row in plan)


def test_the_migration_keeps_every_message_already_there_found_by_mobile(sim, accounts, database):
    # given: an Emay message answered with a provider id, and the schema before migration 0015
    from alembic import command

    from models.migrate import alembic_config, upgrade
    done, _ = submit(accounts, "voice", "notify", mobiles(1), content="您好")
    (message,) = rows(Message, job_id=done.id)
    pid = f"V-{time.time_ns()}"
    execute(update(Message).where(Message.id == message.id).values(status=MessageStatus.SUBMITTED,
                                                                   provider_msg_id=pid))
    command.downgrade(alembic_config(database), "0014")
    # when: 0015 runs over the existing messages
    upgrade(database)
    # then: they keep their entry (written by an older release, nothing says their reports name our custom id),
    # so a report naming only its provider id and mobile still settles it
    assert rows(Message, id=message.id)[0].found_by_mobile is True
    assert ingest(accounts["voice"], [report(pid, mobile=message.mobile)], "push") == 1
    assert rows(Message, id=message.id)[0].status == MessageStatus.DELIVERED
    # and a message written now says otherwise
    later, _ = submit(accounts, "voice", "notify", mobiles(1), content="您好")
    assert rows(Message, job_id=later.id)[0].found_by_mobile is False


def test_a_report_whose_answer_commits_while_its_batch_settles_waits_and_is_applied_later(sim, accounts, monkeypatch,
                                                                                          database):
    # Seen in a chaos run: a qyxs/ihuyi report came before its chunk's answer (a connection reset after the
    # provider accepted), and the answer of the retry committed between the UPDATE that applies reports and the
    # lookup of what it left unchanged. The lookup found the message, so the report counted as settled and was
    # never applied: the message stayed `submitted`.
    if not database.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: no answer commits while a batch settles")
    from msgrelay import reports
    # given: a message of a provider whose ids name requests, its answer not recorded yet
    done, _ = submit(accounts, "sms", "sms", mobiles(1), content="您好")
    (message,) = rows(Message, job_id=done.id)
    pid = f"T-{time.time_ns()}:{message.mobile}"
    real = reports.apply_reports

    def answer_commits_meanwhile(*args: object, **kw: object) -> list:
        changed = real(*args, **kw)
        execute(update(Message).where(Message.id == message.id).values(  # another connection, committed at once
            status=MessageStatus.SUBMITTED, provider_msg_id=pid))
        return changed
    monkeypatch.setattr(reports, "apply_reports", answer_commits_meanwhile)
    # when: its report is settled in that window
    matched = ingest(accounts["sms"], [report(pid, mobile=message.mobile)], "push")
    # then: it settled nothing, and waits as a raw row
    assert (matched, rows(ReportPage)[-1].message_ids) == (0, [None])
    (waiting,) = rows(RawReport, provider_msg_id=pid)
    assert waiting.matched is False
    # and the next match applies it
    monkeypatch.undo()
    with session_scope() as session:
        assert match_reports(session, account="sms") >= 1
    assert rows(Message, id=message.id)[0].status == MessageStatus.DELIVERED


def test_the_probe_switch_is_undone_after_an_error_and_never_hides_it():
    # given a PostgreSQL transaction (SQLite has no planner switch)
    import psycopg
    from sqlalchemy import text

    from models import bulk
    with session_scope() as session:
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("PostgreSQL only")
        cur = session.connection().connection.driver_connection.cursor()
        # when the code inside fails before its statement: the setting is back, the transaction goes on
        with pytest.raises(ZeroDivisionError), bulk._by_key(cur, 1_000):
            1 / 0  # noqa: B018
        assert session.execute(text("SHOW enable_seqscan")).scalar() == "on"
    with session_scope() as session:
        cur = session.connection().connection.driver_connection.cursor()
        # when its statement fails: the statement's own error comes out, not "transaction aborted"
        with pytest.raises(psycopg.errors.UndefinedTable), bulk._by_key(cur, 1_000):
            cur.execute("SELECT * FROM no_such_table_here")
        session.rollback()
        assert session.execute(text("SHOW enable_seqscan")).scalar() == "on"


#: (case, does the store of that answer fail?, is the disk spool writable?)
REDIS_GONE = [
    ("stored at once, its file removed", False, True),
    ("its store fails: its file stays for the next poll", True, True),
    ("the disk fails too: stored without a net", False, False),
]


@pytest.mark.parametrize(("store_fails", "disk_ok"), [c[1:] for c in REDIS_GONE], ids=[c[0] for c in REDIS_GONE])
def test_an_answer_fetched_when_redis_went_away_is_kept_on_disk(tmp_path, store_fails, disk_ok):
    # given a spool on a Redis of its own, which dies while the provider answers the third query (the provider has
    # handed those reports out: they can no longer be kept in Redis, and they exist nowhere else)
    from msgrelay.cli.processes import Supervisor, start_embedded_redis
    pages = [[f"p{p}-{i}" for i in range(5)] for p in range(5)]
    stored: list[str] = []
    lock = threading.Lock()
    disk = tmp_path / "disk"
    if not disk_ok:
        disk.write_text("a file where the spool's folder should be")
    with Supervisor(tmp_path / "logs") as sup:
        spool = Spool("gone-test", "reports", client=redis.Redis.from_url(start_embedded_redis(sup, tmp_path)),
                      disk=disk)
        fetched = 0

        def fetch() -> HttpResponse:
            nonlocal fetched
            fetched += 1
            if fetched == 3:
                redis_server = sup.children.pop("redis")
                redis_server.kill()
                redis_server.wait()
            return HttpResponse(200, json.dumps(pages[fetched - 1]))

        def store(items: list[str]) -> None:
            if store_fails and items[0].startswith("p2"):
                raise ConnectionError("the database went away too")
            with lock:
                stored.extend(items)

        # when
        with pytest.raises((ConnectionError, redis.RedisError)) as raised:
            spool.pull(fetch, lambda r: json.loads(r.text), store, pages=10, page_size=5, batch_items=5)
    # then: the poll stopped at that answer; what was fetched is stored, or kept on this machine's disk
    assert fetched == 3
    if store_fails:  # the store's failure is what the poll reports
        assert isinstance(raised.value, ConnectionError) and "database" in str(raised.value)
    else:  # Redis's, with where the answer went
        assert isinstance(raised.value, KeptOnDisk) == disk_ok and isinstance(raised.value, redis.RedisError)
    on_disk = sorted(disk.glob("*.json")) if disk_ok else []
    assert len(on_disk) == (1 if store_fails else 0)
    expected = pages[:2] if store_fails else pages[:3]
    assert sorted(stored) == sorted(x for p in expected for x in p)
    if store_fails:  # and the next poll, Redis back, stores it and removes the file
        with Supervisor(tmp_path / "logs2") as sup:
            again = Spool("gone-test", "reports", disk=disk,
                          client=redis.Redis.from_url(start_embedded_redis(sup, tmp_path)))
            assert again.drain(lambda r: json.loads(r.text), stored.extend) == [5]
        assert sorted(stored) == sorted(x for p in pages[:3] for x in p) and not list(disk.glob("*"))


def test_the_disk_spool_is_apart_per_deployment_and_account(monkeypatch, tmp_path):
    # given two deployments on one machine (two databases), with accounts of the same and of odd names
    from msgrelay.settings import reload_settings
    monkeypatch.setenv("MSGRELAY_SPOOL_DIR", str(tmp_path))
    folders = []
    try:
        for url in ("sqlite:///one.db", "sqlite:///two.db"):
            monkeypatch.setenv("MSGRELAY_DATABASE_URL", url)
            reload_settings()
            folders += [Spool(name, "reports").disk for name in ("voice", "a/../b", "a_.._b")]
    finally:
        monkeypatch.undo()
        reload_settings()
    # then every folder is apart, under the spool folder, and no name climbs out of it
    assert len(set(folders)) == 6
    assert all(f.resolve().is_relative_to(tmp_path) and ".." not in f.parts for f in folders)


def test_a_disk_spool_answer_is_whole_or_absent_and_drained_after_redis(tmp_path):
    # given an answer kept in Redis, then one kept on disk (Redis failing), and a half-written file of a crash
    spool = Spool(f"spool-test-{time.time_ns()}", "reports", disk=tmp_path / "disk")
    spool.keep(HttpResponse(200, "older"))
    dead = Spool("any", "reports", client=redis.Redis(port=1, socket_connect_timeout=0.5), disk=tmp_path / "disk")
    with pytest.raises(KeptOnDisk) as raised:
        dead.keep(HttpResponse(200, "newer \ud800"))
    (tmp_path / "disk" / "00000000000000000000-1-1.part").write_bytes(b'{"status": 200, "te')
    assert raised.value.path.parent == tmp_path / "disk" and "newer" in raised.value.path.read_text()
    assert raised.value.path.stat().st_mode & 0o077 == 0 and (tmp_path / "disk").stat().st_mode & 0o077 == 0
    # when the next poll drains the spool
    got: list[str] = []
    sizes = spool.drain(lambda r: [r.text], got.extend)
    # then Redis's answer first, then the disk's; the partial file is no answer
    assert sizes == [1, 1] and got == ["older", "newer \ud800"] and len(spool) == 0