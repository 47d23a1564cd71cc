"""The one beat schedule (run exactly one beat: DESIGN §7.7). Every polling entry sets `expires`,
so a backlog of stale polls never piles up behind a stopped worker."""
from __future__ import annotations

from models.statuses import Queue
from msgrelay.settings import Settings, get_settings


def build_schedule(settings: Settings | None = None) -> dict:
    """Celery `beat_schedule`: report, inbound and balance polls, the sweeper and the webhook dispatch (which fans
    out the webhooks queue's drains), all on the poll queue."""
    s = settings or get_settings()
    return {
        "poll-reports": {
            "task": "tasks.poll_all_reports",
            "schedule": s.poll_reports_every_s,
            "options": {"queue": Queue.POLL, "expires": s.poll_reports_every_s},
        },
        "poll-balances": {
            "task": "tasks.poll_all_balances",
            "schedule": s.poll_balances_every_s,
            "options": {"queue": Queue.POLL, "expires": min(s.poll_balances_every_s, 60.0)},
        },
        "poll-inbound": {
            "task": "tasks.poll_all_inbound",
            "schedule": s.poll_inbound_every_s,
            "options": {"queue": Queue.POLL, "expires": s.poll_inbound_every_s},
        },
        "webhooks": {
            "task": "tasks.dispatch_webhooks",
            "schedule": s.webhook_dispatch_every_s,
            "options": {"queue": Queue.POLL, "expires": s.webhook_dispatch_every_s},
        },
        "sweep": {
            "task": "tasks.sweep",
            "schedule": s.sweep_every_s,
            "options": {"queue": Queue.POLL, "expires": s.sweep_every_s},
        },
    }
