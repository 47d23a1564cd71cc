"""The Celery app: Redis broker, late acks, prefetch 1, visibility timeout above every countdown (DESIGN §7)."""
from __future__ import annotations

import logging
import sys
from contextvars import Token
from typing import NoReturn

from celery import Celery, Task
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    beat_init,
    celeryd_init,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_ready,
)
from kombu import Queue as BrokerQueue

from beat_schedule import build_schedule
from models.statuses import Queue
from msgrelay import heap, logs
from msgrelay.accounts import get_accounts
from msgrelay.settings import get_settings
from providers.errors import ConfigError

QUEUES = tuple(Queue)
EXIT_CONFIG = 2  # what `msgrelay` answers to a bad configuration too


def _refuse(problem: str) -> NoReturn:
    """Print a configuration problem and end the process with EXIT_CONFIG."""
    # Celery logs and then ignores an exception raised by a signal handler, and the process would run on;
    # SystemExit is no Exception and ends it. __stderr__: the worker may have redirected sys.stderr to its log.
    print(f"error: config: {problem}", file=sys.__stderr__, flush=True)
    raise SystemExit(EXIT_CONFIG)


def make_app() -> Celery:
    """Build the app from the settings (a bad one stops `celery -A tasks …` here, as `refuse_bad_config` does)."""
    try:
        s = get_settings()
    except ConfigError as exc:
        _refuse(str(exc))
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


@worker_init.connect
@beat_init.connect
def refuse_bad_config(**_kwargs: object) -> None:
    """Stop `celery -A tasks worker|beat` at start-up on a bad accounts file, naming file, account and field."""
    try:
        get_accounts()
        return
    except ConfigError as exc:  # also an unreadable or non-UTF-8 file
        problem = str(exc)
    _refuse(problem)


@worker_ready.connect
@worker_process_init.connect
@beat_init.connect
def freeze_start_up(**_kwargs: object) -> None:
    """A worker (each prefork process too) and beat, once started: full collections skip what start-up built
    (``msgrelay.heap``)."""
    import tasks  # noqa: F401  every task module loaded first: what they import is start-up too

    heap.freeze_after_start()


@after_setup_logger.connect
@after_setup_task_logger.connect
def format_logs(logger: logging.Logger, **_kwargs: object) -> None:
    """Worker and beat: the handlers Celery just gave the root and task loggers write MSGRELAY_LOG_FORMAT
    (JSON, or Celery's own text), with secrets redacted."""
    logs.use_format(logger)


@celeryd_init.connect
def json_from_the_start(instance: object, **_kwargs: object) -> None:
    """A JSON worker writes JSON from its first line: the root handler is ours before Celery's start-up warnings
    (Celery then keeps it), and no banner is printed."""
    if get_settings().log_format == "json":
        instance.quiet = True  # read once the worker is set up, before the banner
        logs.install("json")


_task_contexts: dict[str, Token] = {}  # task id → the log context its task_prerun replaced


@task_prerun.connect
def begin_task_logs(task_id: str, task: Task, **_kwargs: object) -> None:
    """Every line a task logs carries its name and id (its body adds the job, chunk or account)."""
    _task_contexts[task_id] = logs.begin_task(task.name, task_id)


@task_postrun.connect
def end_task_logs(task_id: str, **_kwargs: object) -> None:
    """Put back the log context of before the task."""
    if (token := _task_contexts.pop(task_id, None)) is not None:
        logs.end_task(token)
