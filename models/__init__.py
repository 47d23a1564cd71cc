"""SQLModel tables, engine/session and bulk queries."""
from models.db import get_engine, is_sqlite, session_scope
from models.tables import BalanceSnapshot, Chunk, Job, Message, RawReport, utcnow

__all__ = [
    "BalanceSnapshot", "Chunk", "Job", "Message", "RawReport", "get_engine", "is_sqlite", "session_scope", "utcnow",
]
