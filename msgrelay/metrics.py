"""Prometheus metrics counted where things happen (DESIGN §9, issue 13): requests to providers and their latency,
recipients reaching each status, report lag, retries, webhook deliveries.

Every process (API, each worker and its pool children) counts into its own files under
`PROMETHEUS_MULTIPROC_DIR` (prometheus_client's multiprocess mode), and the API's `/metrics` adds them up with
what it reads at scrape time (jobs, waiting chunks, queue depths, balances). `msgrelay up`, the demo and the
compose file set the directory; without it each process only counts for itself and `/metrics` shows the API's.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess

from models.statuses import DeliveryStatus
from providers.errors import AccountError, AmbiguousError, PermanentError, ProviderError, TransientError
from providers.http import http_send
from providers.values import HttpResponse

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
if os.environ.get(MULTIPROC_ENV):  # a process of a container without the shared volume still counts (for itself)
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LAG_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600)

PROVIDER_REQUESTS = Counter("msgrelay_provider_requests", "Requests to providers by account, endpoint and outcome",
                            ["account", "endpoint", "outcome"])
PROVIDER_SECONDS = Histogram("msgrelay_provider_request_seconds", "Provider round trips by account and endpoint",
                             ["account", "endpoint"], buckets=_LATENCY_BUCKETS)
RECIPIENTS = Counter("msgrelay_recipients", "Recipients reaching a status, by account, kind and status",
                     ["account", "kind", "status"])
REPORT_LAG = Histogram("msgrelay_report_lag_seconds", "From the provider's report time to the report stored",
                       ["account"], buckets=_LAG_BUCKETS)
RETRIES = Counter("msgrelay_retries", "Chunk sends tried again, by account and reason", ["account", "reason"])
WEBHOOK_DELIVERIES = Counter("msgrelay_webhook_deliveries", "Webhook delivery tries by outcome", ["outcome"])
for _outcome in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILING, DeliveryStatus.DEAD):
    WEBHOOK_DELIVERIES.labels(_outcome.value)  # at zero from the start: a rate of nothing is 0, not absent
SPOOL_ON_DISK = Counter("msgrelay_spool_kept_on_disk", "Fetched answers kept on a worker's disk because Redis failed "
                        "as they arrived, by purpose (reports, inbound)", ["purpose"])
for _purpose in ("reports", "inbound"):
    SPOOL_ON_DISK.labels(_purpose)  # at zero from the start, as above
RIGHT_OF_WAY_WAIT = Counter("msgrelay_right_of_way_wait_seconds", "Time throughput work held off for verification "
                            "calls in flight, by work (send, poll, webhook, upload)", ["work"])
for _work in ("send", "poll", "webhook", "upload"):
    RIGHT_OF_WAY_WAIT.labels(_work)  # at zero from the start, as above
WEBHOOK_LAG = Histogram("msgrelay_webhook_lag_seconds", "From a delivery's first event to its acknowledgement",
                        buckets=_LAG_BUCKETS)


def outcome_of(exc: BaseException | None) -> str:
    """A request's outcome word: accepted, or the error family (transient, permanent, account, ambiguous)."""
    if exc is None:
        return "accepted"
    for family, word in ((AccountError, "account"), (AmbiguousError, "ambiguous"), (PermanentError, "permanent"),
                         (TransientError, "transient")):
        if isinstance(exc, family):
            return word
    return "error" if not isinstance(exc, ProviderError) else "permanent"


@contextmanager
def provider_request(account: str, endpoint: str) -> Iterator[None]:
    """Time one request to a provider and count its outcome (an exception leaving the block is its outcome)."""
    started = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        _count(account, endpoint, outcome_of(exc), started)
        raise
    _count(account, endpoint, "accepted", started)


def _count(account: str, endpoint: str, outcome: str, started: float) -> None:
    PROVIDER_SECONDS.labels(account, endpoint).observe(time.perf_counter() - started)
    PROVIDER_REQUESTS.labels(account, endpoint, outcome).inc()


def recipients(account: str, kind: str, status: str, n: int = 1) -> None:
    """Count `n` recipients of an account and kind reaching `status`."""
    if n:
        RECIPIENTS.labels(account, kind, status).inc(n)


def worker_registry() -> CollectorRegistry | None:
    """A registry adding up every process's counts (None when multiprocess mode is off)."""
    if not os.environ.get(MULTIPROC_ENV):
        return None
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def call(account: str, base_url: str, request, **kw) -> HttpResponse:
    """`http_send`, timed and counted under the account and the request's path."""
    with provider_request(account, request.path):
        return http_send(base_url, request, **kw)
