"""The chaos run's count, against the real API and simulator: recipients a worker killed between its chunk's
claim and the request left `unknown` (WORKER_LOST) are lost, neither never accepted nor open, and they do not
keep the run settling."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import update

from benchmarks.chaos import Result, measure, settled
from models import Chunk, Job, session_scope, utcnow
from models.statuses import ChunkStatus, JobStatus
from msgrelay.settings import get_settings
from msgrelay.sweep import sweep
from tests.e2e.conftest import mobiles

pytestmark = pytest.mark.e2e


def test_a_chunk_lost_between_its_claim_and_its_request_is_counted_lost(sim, live_api):
    from tasks import submit
    settings = get_settings()
    people = mobiles("136", 3)
    job = submit("voice", "notify", people, content="通知", send_at=utcnow() + timedelta(hours=1))  # no worker takes it
    stack, jobs = SimpleNamespace(api=live_api, sim=sim.url), {"notify": (job.id, people)}
    assert not settled(stack, jobs)  # queued: still to send
    # a worker claimed the chunk and was killed before the request reached the provider
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job.id).values(status=JobStatus.RUNNING))
        session.execute(update(Chunk).where(Chunk.job_id == job.id).values(
            status=ChunkStatus.SENDING, updated_at=utcnow() - timedelta(seconds=settings.stale_sending_s + 5)))
    sweep(settings)
    result = Result(worker_kills=1)
    measure(stack, jobs, result)
    assert (result.lost["notify"], result.never["notify"], result.open["notify"], result.once["notify"]) == (3, 0, 0, 0)
    assert result.holds and settled(stack, jobs)
    assert not Result(worker_kills=0, lost=result.lost).holds  # no kill could have left them
