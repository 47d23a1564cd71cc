"""Prometheus exposition of what the database knows: messages per status from the job counters (never a scan
of the message table), jobs per status by one GROUP BY."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select

from models import Job, session_scope
from models.counts import status_totals


def render() -> bytes:
    """Messages per status and jobs per status, as gauges."""
    registry = CollectorRegistry()
    messages = Gauge("msgrelay_messages", "Messages per status", ["status"], registry=registry)
    jobs = Gauge("msgrelay_jobs", "Jobs per status", ["status"], registry=registry)
    with session_scope() as session:
        for status, n in status_totals(session).items():
            messages.labels(status).set(n)
        for status, n in session.execute(select(Job.status, func.count()).group_by(Job.status)):
            jobs.labels(status).set(n)
    return generate_latest(registry)
