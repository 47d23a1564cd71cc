"""The per-job counters (job_count, kept by triggers on message): right after every way a message changes,
untouched by a rollback, kept by compaction, and checked by `msgrelay doctor`."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, insert, select, text, update

from models import Chunk, Job, JobCount, Message, is_sqlite, session_scope, utcnow
from models.counts import (
    compact,
    counts_by_job,
    job_counts,
    jobs_to_compact,
    recount_mismatches,
    status_totals,
)
from models.statuses import JobStatus, MessageStatus
from msgrelay.jobs import cancel_job, finalize_jobs, message_counts
from msgrelay.reports import ingest
from msgrelay.send import send_chunk
from msgrelay.sweep import COMPACT_ABOVE_ROWS, sweep
from providers.base import Report
from tests.core.conftest import execute, mobiles, rows, submit

Q, S, D, F, E, R = (MessageStatus.QUEUED, MessageStatus.SUBMITTED, MessageStatus.DELIVERED, MessageStatus.FAILED,
                    MessageStatus.EXPIRED, MessageStatus.REJECTED)
pytestmark = pytest.mark.db  # (tests/core/conftest.py's own pytestmark marks nothing: pytest reads it in modules)
MSGRELAY = Path(sys.executable).with_name("msgrelay")  # the console script, as people run it


@dataclass
class Case:
    """A job of four voice recipients (one chunk), what is done to it, and its counts afterwards."""

    name: str
    act: Callable[[dict, object, int, int], None]  # (accounts, settings, job id, chunk id)
    counts: dict[str, int]


def nothing(accounts, settings, job_id: int, chunk_id: int) -> None:
    """Only the submit."""


def send(accounts, settings, job_id: int, chunk_id: int) -> None:
    """The chunk sent once (the simulator accepts every recipient)."""
    assert send_chunk(chunk_id, settings=settings, accounts=accounts).action == "done"


def send_and_report(accounts, settings, job_id: int, chunk_id: int) -> None:
    """Sent, then three delivered reports and one failed, pushed in one page."""
    send(accounts, settings, job_id, chunk_id)
    page = [Report(status=D if m.seq < 3 else F, state="x", desc=None, provider_msg_id=m.provider_msg_id,
                   custom_id=m.custom_id, mobile=m.mobile, reported_at=None, raw={})
            for m in rows(Message, job_id=job_id)]
    assert ingest(accounts["voice"], page, "push") == 4


def send_and_expire(accounts, settings, job_id: int, chunk_id: int) -> None:
    """Sent long ago and never reported: the sweep expires it."""
    send(accounts, settings, job_id, chunk_id)
    long_ago = utcnow() - timedelta(seconds=settings.report_expiry_s + 5)
    execute(update(Message).where(Message.job_id == job_id).values(submitted_at=long_ago))
    execute(update(Chunk).where(Chunk.id == chunk_id).values(updated_at=long_ago))
    assert sweep(settings).expired >= 4


def cancel(accounts, settings, job_id: int, chunk_id: int) -> None:
    """Cancelled by the operator before anything was sent."""
    with session_scope() as session:
        assert cancel_job(session, job_id) == 4


def sql_update(accounts, settings, job_id: int, chunk_id: int) -> None:
    """Two rows changed by a plain UPDATE, as a test or an operator would; one more by hand-written SQL."""
    execute(update(Message).where(Message.job_id == job_id, Message.seq < 2).values(status=D))
    execute(text("UPDATE message SET status = :s WHERE job_id = :j AND seq = 2").bindparams(s=F.value, j=job_id))


def sql_update_unchanged(accounts, settings, job_id: int, chunk_id: int) -> None:
    """An UPDATE that sets other columns, and one that sets the same status again: nothing to count."""
    execute(update(Message).where(Message.job_id == job_id).values(provider_desc="noted", updated_at=utcnow()))
    execute(update(Message).where(Message.job_id == job_id).values(status=Q))


def sql_delete(accounts, settings, job_id: int, chunk_id: int) -> None:
    """One delivered row and one queued row deleted."""
    execute(update(Message).where(Message.job_id == job_id, Message.seq == 0).values(status=D))
    execute(delete(Message).where(Message.job_id == job_id, Message.seq.in_([0, 1])))


def rolled_back(accounts, settings, job_id: int, chunk_id: int) -> None:
    """Every message delivered and one deleted, in a transaction that then fails."""
    with pytest.raises(RuntimeError), session_scope() as session:
        session.execute(update(Message).where(Message.job_id == job_id).values(status=D))
        session.execute(delete(Message).where(Message.job_id == job_id, Message.seq == 0))
        assert job_counts(session, job_id)[D] == 3  # seen inside the transaction...
        raise RuntimeError("the worker dies")


def many_statements_then_compact(accounts, settings, job_id: int, chunk_id: int) -> None:
    """Seventy single-row statements (70 delta rows on PostgreSQL), then compact: the sums stay."""
    for i in range(70):  # each statement flips one message: queued → delivered → queued …
        execute(update(Message).where(Message.job_id == job_id, Message.seq == i % 4)
                .values(status=(D, Q)[(i // 4) % 2]))
    execute(update(Message).where(Message.job_id == job_id, Message.seq == 3).values(status=F))
    with session_scope() as session:
        sqlite = is_sqlite(session.get_bind())
        before = job_counts(session, job_id)
        folded = compact(session, [job_id])
    with session_scope() as session:
        assert job_counts(session, job_id) == before
        kept = session.scalar(select(func.count()).select_from(JobCount).where(JobCount.job_id == job_id))
    assert kept == 3 and folded == (0 if sqlite else 140)  # PostgreSQL: 1 + 2 × 71 rows before, 3 after


CASES = [
    Case("after submit", nothing, {Q: 4}),
    Case("after the send", send, {S: 4}),
    Case("after reports", send_and_report, {D: 3, F: 1}),
    Case("after the sweep's expiry", send_and_expire, {E: 4}),
    Case("after cancel", cancel, {R: 4}),
    Case("after a direct SQL UPDATE", sql_update, {D: 2, F: 1, Q: 1}),
    Case("after updates that change no status", sql_update_unchanged, {Q: 4}),
    Case("after a direct SQL DELETE", sql_delete, {Q: 2}),
    Case("after a rolled-back transaction", rolled_back, {Q: 4}),
    Case("after compaction", many_statements_then_compact, {D: 1, Q: 2, F: 1}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_counters_follow_every_change(sim, accounts, settings, case):
    # given: a job of four recipients
    done, published = submit(accounts, "voice", "notify", mobiles(4), content="您好")
    # when
    case.act(accounts, settings, done.id, published[0][0])
    # then: the counters say what a recount says, through every reader
    expected = {s.value: case.counts.get(s, 0) for s in MessageStatus}
    with session_scope() as session:
        assert job_counts(session, done.id) == expected
        assert message_counts(session, done.id) == expected
        assert counts_by_job(session, [done.id, -1]) == {done.id: expected, -1: dict.fromkeys(expected, 0)}
        assert recount_mismatches(session, [done.id]) == []


def test_status_totals_grow_with_a_job(accounts):
    with session_scope() as session:
        before = status_totals(session)
    submit(accounts, "voice", "notify", mobiles(3), content="您好")
    with session_scope() as session:
        after = status_totals(session)
    assert after[Q] - before[Q] == 3 and set(after) == {s.value for s in MessageStatus}


FINAL_OR_NOT = [("all final", {0: D, 1: F, 2: R}, JobStatus.DONE),
                ("one still submitted", {0: D, 1: F, 2: S}, JobStatus.RUNNING),
                ("one still unknown", {0: D, 1: MessageStatus.UNKNOWN, 2: D}, JobStatus.RUNNING)]


@pytest.mark.parametrize(("statuses", "job_status"), [c[1:] for c in FINAL_OR_NOT], ids=[c[0] for c in FINAL_OR_NOT])
def test_finalize_reads_the_counters(accounts, statuses, job_status):
    done, _ = submit(accounts, "voice", "notify", mobiles(3), content="您好")
    for seq, status in statuses.items():
        execute(update(Message).where(Message.job_id == done.id, Message.seq == seq).values(status=status))
    with session_scope() as session:
        finalize_jobs(session, [done.id])
    assert rows(Job, id=done.id)[0].status == job_status


def test_the_sweep_compacts_a_job_with_many_delta_rows(accounts, settings):
    # given: a job whose counters took more than COMPACT_ABOVE_ROWS statements
    done, _ = submit(accounts, "voice", "notify", mobiles(2), content="您好")
    for i in range(COMPACT_ABOVE_ROWS + 2):
        execute(update(Message).where(Message.job_id == done.id, Message.seq == 0).values(status=(D, Q)[i % 2]))
    with session_scope() as session:
        before = job_counts(session, done.id)
        crowded = done.id in jobs_to_compact(session, above=COMPACT_ABOVE_ROWS)
    # when
    result = sweep(settings)
    # then: PostgreSQL's delta rows are folded (SQLite never has more than one row per status); sums unchanged
    with session_scope() as session:
        sqlite = is_sqlite(session.get_bind())
        assert job_counts(session, done.id) == before == {**dict.fromkeys(before, 0), Q: 2}
        assert done.id not in jobs_to_compact(session, above=COMPACT_ABOVE_ROWS)
    assert crowded == (not sqlite)
    assert result.compacted_rows == 0 if sqlite else result.compacted_rows >= 2 * (COMPACT_ABOVE_ROWS + 2) - 1


def doctor(*args: str) -> subprocess.CompletedProcess:
    """`msgrelay doctor …` through the console script."""
    return subprocess.run([str(MSGRELAY), "doctor", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"}, check=False)


def test_doctor_finds_a_tampered_counter(accounts):
    # given: two jobs, and one counter of the first raised by hand (no message changed)
    tampered, _ = submit(accounts, "voice", "notify", mobiles(2), content="您好")
    fine, _ = submit(accounts, "voice", "notify", mobiles(2), content="您好")
    execute(insert(JobCount).values(job_id=tampered.id, status=D, n=5))
    try:
        # when / then: doctor names it and exits 1; an untouched job passes
        out = doctor("--job", str(tampered.id))
        assert out.returncode == 1, out.stdout + out.stderr
        assert [str(tampered.id), D.value, "5", "0"] in [ln.replace("│", " ").split() for ln in out.stdout.splitlines()]
        everything = doctor()
        assert everything.returncode == 1 and str(tampered.id) in everything.stdout
        out = doctor("--job", str(fine.id))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "counters agree with a recount for 1 job" in out.stdout
    finally:  # put it back: other tests check every job
        execute(delete(JobCount).where(JobCount.job_id == tampered.id))
        execute(text("INSERT INTO job_count (job_id, status, n) SELECT job_id, status, count(*) FROM message "
                     "WHERE job_id = :j GROUP BY job_id, status").bindparams(j=tampered.id))
    # and once repaired, every job agrees
    out = doctor()
    assert out.returncode == 0, out.stdout + out.stderr
    with session_scope() as session:
        jobs = session.scalar(select(func.count()).select_from(Job))
    assert f"counters agree with a recount for {jobs} jobs" in out.stdout


def test_doctor_names_a_missing_job():
    out = doctor("--job", "987654321")
    assert out.returncode == 2 and "no job 987654321" in out.stderr


def test_the_migration_counts_the_messages_already_there(accounts, database):
    # given: jobs in several states, and the counters dropped (down to 0003)
    from alembic import command

    from models.migrate import alembic_config, upgrade

    done, _ = submit(accounts, "voice", "notify", mobiles(3), content="您好")
    execute(update(Message).where(Message.job_id == done.id, Message.seq == 0).values(status=D))
    with session_scope() as session:
        before = counts_by_job(session, list(session.scalars(select(Job.id))))
    command.downgrade(alembic_config(database), "0003")
    # when: 0004 runs again over the existing messages
    upgrade(database)
    # then: the backfill counted them all, and the triggers count again
    with session_scope() as session:
        assert counts_by_job(session, list(before)) == before
        assert recount_mismatches(session) == []
    execute(update(Message).where(Message.job_id == done.id, Message.seq == 1).values(status=F))
    with session_scope() as session:
        assert job_counts(session, done.id)[F] == 1 and recount_mismatches(session, [done.id]) == []
