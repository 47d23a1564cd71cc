"""Celery app and tasks (`celery -A tasks worker|beat`), and `submit` for producers in Python."""
from __future__ import annotations

from typing import Any

from tasks.app import app
from tasks.polling import (
    poll_all_balances, poll_all_inbound, poll_all_reports, poll_balance, poll_inbound, poll_reports, sweep,
)
from tasks.sending import enqueue_chunks, send_chunk
from tasks.webhooks import dispatch_webhooks, drain_webhooks


def submit(account: str, kind: str, recipients: list[Any], **kw: Any):
    """Validate and write a job, then enqueue its chunks: `tasks.submit("voice", "notify", ["138…"], content="…")`."""
    from msgrelay.accounts import get_accounts
    from msgrelay.submit import submit_job

    return submit_job(accounts=get_accounts(), account=account, kind=kind, recipients=recipients,
                      enqueue=enqueue_chunks, **kw)


__all__ = ["app", "dispatch_webhooks", "drain_webhooks", "enqueue_chunks", "poll_all_balances", "poll_all_inbound", "poll_all_reports", "poll_balance",
           "poll_inbound", "poll_reports", "send_chunk", "submit", "sweep"]
