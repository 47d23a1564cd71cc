"""Per-job message counts by status, read from `job_count` (kept by the triggers of migration 0004), never by
grouping `message`; plus the fold of PostgreSQL's delta rows and a recount to check the counters against.

A job's count of a status is `sum(n)` over its rows: one row per job and status on SQLite (upserted), one
delta row per statement on PostgreSQL until `compact` folds them.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, func, literal, select, text, union_all
from sqlmodel import Session

from models.db import is_sqlite
from models.statuses import MessageStatus
from models.tables import JobCount, Message

#: (job_id, status, counted, recounted)
Mismatch = tuple[int, str, int, int]

_COMPACT_PG = """
WITH gone AS (
    DELETE FROM job_count WHERE id IN (SELECT id FROM job_count {where} FOR UPDATE SKIP LOCKED)
    RETURNING job_id, status, n
), kept AS (
    INSERT INTO job_count (job_id, status, n)
    SELECT job_id, status, sum(n) FROM gone GROUP BY 1, 2 HAVING sum(n) <> 0
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM kept)
"""


def _zeroes() -> dict[str, int]:
    """Every message status, at zero."""
    return {s.value: 0 for s in MessageStatus}


def job_counts(session: Session, job_id: int) -> dict[str, int]:
    """A job's messages per status (every status present, zero when none)."""
    return counts_by_job(session, [job_id])[job_id]


def counts_by_job(session: Session, job_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Messages per status of each job asked for (every job and status present, zero when none)."""
    out = {job_id: _zeroes() for job_id in job_ids}
    if out:
        for job_id, status, n in session.execute(
            select(JobCount.job_id, JobCount.status, func.sum(JobCount.n))
            .where(JobCount.job_id.in_(list(out))).group_by(JobCount.job_id, JobCount.status)
        ):
            out[job_id][status] = int(n)
    return out


def status_totals(session: Session) -> dict[str, int]:
    """Messages per status over every job (every status present)."""
    totals = _zeroes()
    for status, n in session.execute(select(JobCount.status, func.sum(JobCount.n)).group_by(JobCount.status)):
        totals[status] = int(n)
    return totals


def jobs_to_compact(session: Session, *, above: int, limit: int = 100) -> list[int]:
    """Jobs with more than `above` counter rows (only PostgreSQL's delta rows pile up)."""
    if is_sqlite(session.get_bind()):
        return []  # one row per job and status already
    return list(session.scalars(select(JobCount.job_id).group_by(JobCount.job_id)
                                .having(func.count() > above).limit(limit)))


def compact(session: Session, job_ids: Sequence[int] | None = None) -> int:
    """Fold the counter rows of `job_ids` (all jobs when None) into one row per job and status; returns how many
    rows fewer there are. Nothing to do on SQLite.

    Safe beside concurrent writers: the triggers only ever INSERT rows, never change or lock one, so the DELETE
    takes exactly the rows its snapshot sees and puts back their sum in the same statement (same transaction:
    every reader sees the rows before or after, with the same sums). A delta not yet committed, or committed
    meanwhile, is not seen, so not deleted, and still counts. A compact running at the same time holds its rows
    locked: SKIP LOCKED leaves them to it (no waiting, no deadlock), and RETURNING yields only the rows this
    one deleted, so nothing is summed twice.
    """
    if is_sqlite(session.get_bind()) or (job_ids is not None and not job_ids):
        return 0
    if job_ids is None:
        return int(session.execute(text(_COMPACT_PG.format(where=""))).scalar_one())
    return int(session.execute(text(_COMPACT_PG.format(where="WHERE job_id = ANY(:ids)")),
                               {"ids": list(job_ids)}).scalar_one())


def recount_mismatches(session: Session, job_ids: Sequence[int] | None = None) -> list[Mismatch]:
    """(job, status, counted, recounted) wherever the counters disagree with a GROUP BY of the messages, for
    `job_ids` (all jobs when None). One statement, so one snapshot: writers meanwhile cause no false alarm."""
    counted = select(JobCount.job_id, JobCount.status, JobCount.n.label("counted"),
                     literal(0).label("recounted"))
    recounted = select(Message.job_id, Message.status, literal(0).label("counted"),
                       func.count().label("recounted")).group_by(Message.job_id, Message.status)
    if job_ids is not None:
        ids = bindparam("ids", list(job_ids), expanding=True)
        counted, recounted = counted.where(JobCount.job_id.in_(ids)), recounted.where(Message.job_id.in_(ids))
    both = union_all(counted, recounted).subquery()
    rows = session.execute(
        select(both.c.job_id, both.c.status, func.sum(both.c.counted), func.sum(both.c.recounted))
        .group_by(both.c.job_id, both.c.status)
        .having(func.sum(both.c.counted) != func.sum(both.c.recounted))
        .order_by(both.c.job_id, both.c.status)
    )
    return [(job_id, status, int(c), int(r)) for job_id, status, c, r in rows]
