"""Beat-driven tasks: report polls, balance polls and the sweeper, each a thin wrapper."""
from __future__ import annotations

from celery.utils.log import get_task_logger

from msgrelay import balances, inbound, reports
from msgrelay.accounts import get_accounts
from msgrelay.settings import get_settings
from msgrelay.sweep import sweep as sweep_once
from providers.errors import ProviderError
from tasks.app import app
from tasks.sending import enqueue_chunks

log = get_task_logger(__name__)


@app.task(name="tasks.poll_all_reports")
def poll_all_reports() -> int:
    """Fan out one poll_reports per account that has a report query."""
    names = reports.accounts_to_poll(get_accounts())
    for name in names:
        poll_reports.apply_async(args=[name], queue="poll", expires=get_settings().poll_reports_every_s * 4)
    return len(names)


@app.task(name="tasks.poll_reports")
def poll_reports(account: str) -> dict:
    """Drain one account's reports."""
    try:
        return reports.poll_reports(get_accounts()[account], get_settings())
    except ProviderError as exc:  # the next beat tick polls again; nothing is lost (reports wait at the provider)
        log.warning("report poll of %s failed: %s", account, exc)
        return {"error": exc.code}


@app.task(name="tasks.poll_all_balances")
def poll_all_balances() -> int:
    """Fan out one poll_balance per account."""
    names = list(get_accounts())
    for name in names:
        poll_balance.apply_async(args=[name], queue="poll", expires=60)
    return len(names)


@app.task(name="tasks.poll_balance")
def poll_balance(account: str) -> int:
    """Store one account's balance snapshot(s)."""
    try:
        return len(balances.poll_balance(get_accounts()[account], get_settings()))
    except ProviderError as exc:
        log.warning("balance poll of %s failed: %s", account, exc)
        return 0


@app.task(name="tasks.poll_all_inbound")
def poll_all_inbound() -> int:
    """Fan out one poll_inbound per account whose provider has an inbound query."""
    from providers.registry import get_provider
    names = [n for n, a in get_accounts().items()
             if (p := get_provider(a.provider)) is not None and p.has_inbound_query]
    for name in names:
        poll_inbound.apply_async(args=[name], queue="poll", expires=get_settings().poll_inbound_every_s * 4)
    return len(names)


@app.task(name="tasks.poll_inbound")
def poll_inbound(account: str) -> int:
    """Store one account's new inbound messages."""
    try:
        return inbound.poll_inbound(get_accounts()[account], get_settings())
    except ProviderError as exc:
        log.warning("inbound poll of %s failed: %s", account, exc)
        return 0


@app.task(name="tasks.sweep")
def sweep() -> dict:
    """Release due jobs, re-enqueue stale chunks, settle lost sends, expire silent messages."""
    result = sweep_once(get_settings())
    enqueue_chunks(result.enqueue)
    return {k: v for k, v in vars(result).items() if k != "enqueue"}
