"""SQLModel tables, engine/session and bulk queries."""
from models.db import get_engine, is_sqlite, session_scope
from models.tables import (
    BalanceSnapshot, Chunk, InboundMessage, Job, JobCount, Message, RawReport, ReportPage, Template, utcnow,
)
from models.audit import AuditEntry
from models.policy import FrequencyCount, Suppression
from models.progress import JobProgress
from models.routing import AccountPause
from models.webhooks import WebhookDelivery, WebhookEvent, WebhookReceiver

__all__ = [
    "AccountPause", "AuditEntry", "BalanceSnapshot", "Chunk", "FrequencyCount", "Suppression", "InboundMessage", "Job", "JobCount", "JobProgress", "Message", "RawReport", "ReportPage", "Template",
    "WebhookDelivery", "WebhookEvent", "WebhookReceiver", "get_engine", "is_sqlite", "session_scope", "utcnow",
]
