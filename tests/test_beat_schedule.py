"""The one beat schedule: every entry on the poll queue, with `expires`, under the visibility timeout."""
from __future__ import annotations

from beat_schedule import build_schedule
from msgrelay.settings import Settings


def test_every_entry_expires_and_runs_on_the_poll_queue():
    schedule = build_schedule(Settings())
    assert {"poll-reports", "poll-balances", "poll-inbound", "sweep"} <= set(schedule)
    for name, entry in schedule.items():
        assert entry["options"]["queue"] == "poll", name
        assert 0 < entry["options"]["expires"] <= entry["schedule"], name


def test_beat_sends_every_entry_of_the_app_to_the_poll_queue_with_an_expiry(monkeypatch):
    # what beat itself would publish for the app's schedule, captured before it reaches any broker
    from datetime import datetime, timezone

    from celery.beat import Scheduler

    from msgrelay.settings import get_settings
    from tasks import app
    sent: list[tuple[str, object, dict]] = []
    monkeypatch.setattr(app.amqp, "send_task_message", lambda producer, name, message, **kw: sent.append(
        (name, message, kw)))
    scheduler = Scheduler(app, lazy=True)
    scheduler.setup_schedule()
    entries = {name: e for name, e in scheduler.schedule.items() if not name.startswith("celery.")}
    s = get_settings()
    # the intervals are the settings' (the test settings make them differ from the defaults)
    assert {name: e.schedule.run_every.total_seconds() for name, e in entries.items()} == {
        "poll-reports": s.poll_reports_every_s, "poll-balances": s.poll_balances_every_s,
        "poll-inbound": s.poll_inbound_every_s, "sweep": s.sweep_every_s, "webhooks": s.webhook_dispatch_every_s}
    with app.connection_for_write("memory://") as conn:
        producer = app.amqp.Producer(conn)
        before = datetime.now(timezone.utc)
        for entry in entries.values():
            scheduler.apply_async(entry, producer=producer)
    assert sorted(name for name, _, _ in sent) == sorted(e.task for e in entries.values())
    assert all(name in app.tasks for name, _, _ in sent)  # every scheduled task exists in the app
    for (name, message, kw), entry in zip(sent, entries.values()):
        assert kw["queue"].name == "poll", name
        # a poll left unrun past its own interval is dropped, not piled up behind a stopped worker
        expires = datetime.fromisoformat(message.headers["expires"])
        assert 0 < (expires - before).total_seconds() <= entry.schedule.run_every.total_seconds() + 1, name


def test_celery_app_reliability_settings():
    from msgrelay.settings import get_settings
    from tasks import app
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    vt = conf.broker_transport_options["visibility_timeout"]
    assert vt == get_settings().visibility_timeout_s
    assert conf.result_backend_transport_options["visibility_timeout"] == vt
    assert {q.name for q in conf.task_queues} == {"otp", "bulk", "poll", "webhooks"}


def test_backoff_stays_well_under_the_visibility_timeout():
    from msgrelay.retry import backoff_s
    s = Settings(visibility_timeout_s=100, retry_backoff_base_s=2, retry_backoff_max_s=1000)
    waits = [backoff_s(n, s) for n in range(20) for _ in range(20)]
    assert max(waits) <= 25 and min(waits) > 0
    assert backoff_s(0, s) <= 2 < backoff_s(3, s)  # grows
