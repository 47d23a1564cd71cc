"""Beat-driven tasks: report, inbound and balance polls (fanned out one task per account) and the sweeper."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from celery import Task
from celery.utils.log import get_task_logger

from models.statuses import Queue
from msgrelay import balances, inbound, reports
from msgrelay.accounts import Account, get_accounts
from msgrelay.logs import log_context
from msgrelay.settings import get_settings
from msgrelay.sweep import sweep as sweep_once
from providers.errors import ProviderError
from providers.registry import get_provider
from tasks.app import app
from tasks.sending import enqueue_chunks

log = get_task_logger(__name__)


def _fan_out(task: Task, names: Iterable[str], expires_s: float) -> int:
    """One `task(account)` per name on the poll queue; a backlog older than `expires_s` is dropped, not run."""
    names = list(names)
    for name in names:
        task.apply_async(args=[name], queue=Queue.POLL, expires=expires_s)
    return len(names)


def _for_account(what: str, account: str, run: Callable[[Account], Any], failed: Any) -> Any:
    """Run one account's poll; a provider error waits for the next beat tick (nothing is lost: the provider
    keeps what was not fetched)."""
    acct = get_accounts().get(account)
    if acct is None:  # removed from the accounts file since the fan-out
        return failed
    with log_context(account=account):
        try:
            return run(acct)
        except ProviderError as exc:
            log.warning("%s poll of %s failed: %s", what, account, exc)
            return failed


@app.task(name="tasks.poll_all_reports")
def poll_all_reports() -> int:
    """Fan out one poll_reports per account with reports to drain or match."""
    return _fan_out(poll_reports, reports.accounts_to_poll(get_accounts()), get_settings().poll_reports_every_s * 4)


@app.task(name="tasks.poll_reports")
def poll_reports(account: str) -> dict:
    """Drain one account's reports."""
    return _for_account("report", account, lambda a: reports.poll_reports(a, get_settings()), {"error": True})


@app.task(name="tasks.poll_all_balances")
def poll_all_balances() -> int:
    """Fan out one poll_balance per account."""
    return _fan_out(poll_balance, get_accounts(), 60)


@app.task(name="tasks.poll_balance")
def poll_balance(account: str) -> int:
    """Store one account's balance snapshot(s)."""
    return _for_account("balance", account, lambda a: len(balances.poll_balance(a, get_settings())), 0)


@app.task(name="tasks.poll_all_inbound")
def poll_all_inbound() -> int:
    """Fan out one poll_inbound per account whose provider has an inbound query."""
    names = [n for n, a in get_accounts().items() if (p := get_provider(a.provider)) and p.has_inbound_query]
    return _fan_out(poll_inbound, names, get_settings().poll_inbound_every_s * 4)


@app.task(name="tasks.poll_inbound")
def poll_inbound(account: str) -> int:
    """Store one account's new inbound messages."""
    return _for_account("inbound", account, lambda a: inbound.poll_inbound(a, get_settings()), 0)


@app.task(name="tasks.sweep")
def sweep() -> dict:
    """Release due jobs, re-enqueue stale chunks, settle lost sends, expire silent messages."""
    result = sweep_once(get_settings())
    enqueue_chunks(result.enqueue)
    return {k: v for k, v in vars(result).items() if k != "enqueue"}
