"""The Celery app: Redis broker, late acks, prefetch 1, visibility timeout above every countdown (DESIGN §7)."""
from __future__ import annotations

import sys

from celery import Celery
from celery.signals import beat_init, worker_init
from kombu import Queue as BrokerQueue

from beat_schedule import build_schedule
from models.statuses import Queue
from msgrelay.accounts import get_accounts
from msgrelay.settings import get_settings
from providers.errors import ConfigError

QUEUES = tuple(Queue)


def make_app() -> Celery:
    """Build the app from the settings."""
    s = get_settings()
    app = Celery("msgrelay", broker=s.effective_broker_url(), include=["tasks.sending", "tasks.polling", "tasks.webhooks"])
    transport = {"visibility_timeout": s.visibility_timeout_s}
    app.conf.update(
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[BrokerQueue(q) for q in QUEUES],
        task_default_queue=Queue.BULK,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        worker_send_task_events=True,  # Flower
        task_send_sent_event=True,
        beat_schedule=build_schedule(s),
        worker_hijack_root_logger=False,
    )
    return app


app = make_app()


EXIT_CONFIG = 2  # what `msgrelay` answers to a bad configuration too


@worker_init.connect
@beat_init.connect
def refuse_bad_config(**_kwargs: object) -> None:
    """Stop `celery -A tasks worker|beat` at start-up on a bad accounts file, naming file, account and field."""
    try:
        get_accounts()
        return
    except ConfigError as exc:  # also an unreadable or non-UTF-8 file
        problem = str(exc)
    # Celery logs and then ignores an exception raised by a signal handler, and the process would run on;
    # SystemExit is no Exception and ends it. __stderr__: the worker may have redirected sys.stderr to its log.
    print(f"error: config: {problem}", file=sys.__stderr__, flush=True)
    raise SystemExit(EXIT_CONFIG)
