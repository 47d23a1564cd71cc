"""Prometheus exposition of what the database knows (one GROUP BY per table)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select

from models import Job, Message, session_scope


def render() -> bytes:
    """Messages per status and jobs per status, as gauges."""
    registry = CollectorRegistry()
    messages = Gauge("msgrelay_messages", "Messages per status", ["status"], registry=registry)
    jobs = Gauge("msgrelay_jobs", "Jobs per status", ["status"], registry=registry)
    with session_scope() as session:
        for status, n in session.execute(select(Message.status, func.count()).group_by(Message.status)):
            messages.labels(status).set(n)
        for status, n in session.execute(select(Job.status, func.count()).group_by(Job.status)):
            jobs.labels(status).set(n)
    return generate_latest(registry)
