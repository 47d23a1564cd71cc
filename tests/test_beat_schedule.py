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


def test_celery_app_uses_the_schedule_and_reliability_settings():
    from tasks import app
    conf = app.conf
    assert set(conf.beat_schedule) == {"poll-reports", "poll-balances", "poll-inbound", "sweep"}
    for entry in conf.beat_schedule.values():  # every scheduled task exists in the app
        assert entry["task"] in app.tasks, entry["task"]
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    vt = conf.broker_transport_options["visibility_timeout"]
    assert conf.result_backend_transport_options["visibility_timeout"] == vt
    assert {q.name for q in conf.task_queues} == {"otp", "bulk", "poll"}


def test_backoff_stays_well_under_the_visibility_timeout():
    from msgrelay.retry import backoff_s
    s = Settings(visibility_timeout_s=100, retry_backoff_base_s=2, retry_backoff_max_s=1000)
    waits = [backoff_s(n, s) for n in range(20) for _ in range(20)]
    assert max(waits) <= 25 and min(waits) > 0
    assert backoff_s(0, s) <= 2 < backoff_s(3, s)  # grows
