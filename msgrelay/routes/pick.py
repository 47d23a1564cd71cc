"""The account a route job's chunk goes through: the first healthy one (failover), or the healthy one furthest
below its share (weighted). A chunk keeps its account while it is healthy, and always once a try of it may have
been accepted (an ambiguous chunk never moves)."""
from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import func, select, update
from sqlmodel import Session

from models import Chunk, Job, is_sqlite
from models.statuses import ChunkStatus
from msgrelay.routes.config import Route
from msgrelay.routes.health import paused


def pick(route: Route, unhealthy: Collection[str], assigned: Mapping[str, int]) -> str | None:
    """The account for the next chunk, or None when every account of the route is paused."""
    healthy = [a for a in route.accounts if a not in unhealthy]
    if not healthy:
        return None
    if route.mode == "failover":
        return healthy[0]
    return min(healthy, key=lambda a: ((assigned.get(a, 0) + 1) / route.weight(a), route.accounts.index(a)))


def assign(session: Session, job: Job, chunk: Chunk, route: Route) -> tuple[str | None, dict[str, str]]:
    """The account this chunk goes through, written on the chunk (None: every account is paused), and the paused
    accounts with their reasons. A weighted pick locks the job's row, so concurrent chunks count each other."""
    stopped = paused(session, route.accounts)
    if chunk.account is not None and (chunk.ambiguous_at is not None or chunk.account not in stopped):
        return chunk.account, stopped
    assigned: dict[str, int] = {}
    if route.mode == "weighted":  # one pick at a time per job: lock its row (SQLite: take the write lock now)
        if is_sqlite(session.get_bind()):
            session.execute(update(Job).where(Job.id == job.id).values(id=Job.id))
        else:
            session.execute(select(Job.id).where(Job.id == job.id).with_for_update())
        assigned = dict(session.execute(
            select(Chunk.account, func.count()).where(Chunk.job_id == job.id, Chunk.account.is_not(None),
                                                      Chunk.id != chunk.id, Chunk.status != ChunkStatus.SPLIT)
            .group_by(Chunk.account)).all())
    name = pick(route, stopped, assigned)
    if name is not None and name != chunk.account:
        session.execute(update(Chunk).where(Chunk.id == chunk.id, Chunk.status == ChunkStatus.PENDING)
                        .values(account=name))
        chunk.account = name
    return name, stopped
