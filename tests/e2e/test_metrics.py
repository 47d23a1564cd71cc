"""`/metrics` of the running API adds up what the worker's processes counted where it happened (prometheus_client's
multiprocess files) and what it reads at scrape time; a job's requests, recipients, reports and retries show."""
from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import mobiles, wait_done

pytestmark = pytest.mark.e2e


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    text = requests.get(f"{url}/metrics", timeout=30).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_jobs_requests_recipients_reports_and_retries_are_counted_where_they_happen(api, sim, live_api):
    before = scrape(live_api)
    sim.post("faults", {"error_5xx_rate": 0.3, "seed": 7})
    job = api.post("/v1/jobs", json={"account": "limited", "kind": "notify", "content": "您好",
                                     "recipients": mobiles("159", 400)}).json()["id"]
    view = wait_done(job)
    sim.post("faults", {})
    after = scrape(live_api)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # every try of the job's four chunks is a request of account `limited` at /voice/send, by outcome
    accepted = grew("msgrelay_provider_requests_total", account="limited", endpoint="/voice/send", outcome="accepted")
    transient = grew("msgrelay_provider_requests_total", account="limited", endpoint="/voice/send",
                     outcome="transient")
    assert accepted == 4 and transient > 0
    assert transient == grew("msgrelay_retries_total", account="limited", reason="HTTP_503")
    assert grew("msgrelay_provider_request_seconds_count", account="limited", endpoint="/voice/send") == 4 + transient
    # recipients submitted, then what their reports said, by account and kind
    assert grew("msgrelay_recipients_total", account="limited", kind="notify", status="submitted") == 400
    for status in ("delivered", "failed", "expired"):
        assert grew("msgrelay_recipients_total", account="limited", kind="notify", status=status) == \
            view["counts"][status]
    assert grew("msgrelay_report_lag_seconds_count", account="limited") > 0
    # read at scrape time: counters of messages by status, queues, waiting chunks
    assert value(after, "msgrelay_messages", status="delivered") >= view["counts"]["delivered"]
    assert ("msgrelay_queue_depth", (("queue", "bulk"),)) in after
    assert ("msgrelay_chunks_waiting", (("reason", "window"),)) in after


def test_every_metric_the_dashboard_and_the_alerts_use_is_exposed(live_api):
    import json
    import re
    from pathlib import Path

    import yaml
    deploy = Path(__file__).resolve().parents[2] / "deploy"
    dashboard = json.loads((deploy / "grafana" / "msgrelay-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [r["expr"] for g in yaml.safe_load((deploy / "alerts.yml").read_text())["groups"] for r in g["rules"]]
    used = {re.sub(r"_(bucket|count|sum|total)$", "", name) for e in exprs for name in re.findall(r"msgrelay_\w+", e)}
    text = requests.get(f"{live_api}/metrics", timeout=30).text
    exposed = {family.name for family in text_string_to_metric_families(text)}
    assert used <= exposed, sorted(used - exposed)
    prometheus = yaml.safe_load((deploy / "prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["metrics_path"] == "/metrics"
