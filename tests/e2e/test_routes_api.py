"""The operator's view of routes (DESIGN §9 "Routes"): GET /v1/routes, POST /v1/accounts/{account}/resume and
`msgrelay routes [list]|resume`, over the session's routes `pair` (ra, rb: failover) and `split` (wa, wb: 3:1)."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

pytestmark = pytest.mark.e2e
ROUTE_ACCOUNTS = ("ra", "rb", "wa", "wb")
# not a balance reason: the worker's balance poll (every 30 s) lifts those by itself
REASON = "credentials: client IP refused"
VIEW_KEYS = {"name", "provider", "weight", "health", "paused_reason", "paused_since", "balance", "rate_limit"}


def msgrelay(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "msgrelay.cli", *args], check=False,
                          env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True, timeout=120)


def _clear() -> None:
    from models import session_scope
    from msgrelay.routes import health
    with session_scope() as session:
        health.clear(session, ROUTE_ACCOUNTS)


def _pause(account: str, reason: str = REASON) -> None:
    from models import session_scope
    from msgrelay.routes import health
    with session_scope() as session:
        health.pause(session, account, reason)


def _paused() -> dict[str, str]:
    from models import session_scope
    from msgrelay.routes import health
    with session_scope() as session:
        return health.paused(session, ROUTE_ACCOUNTS)


@pytest.fixture
def unpaused(stack) -> Iterator[None]:
    """The route accounts unpaused before the test, and again after it, whatever it left behind."""
    _clear()
    try:
        yield
    finally:
        _clear()


def _routes(api) -> dict[str, dict]:
    answer = api.get("/v1/routes")
    assert answer.status_code == 200, answer.text
    return {route["name"]: route for route in answer.json()}


def _account(routes: dict[str, dict], route: str, account: str) -> dict:
    return next(a for a in routes[route]["accounts"] if a["name"] == account)


def test_routes_list_their_accounts_in_order_with_weights_health_and_balance(stack, api, unpaused):
    # given the session's routes, and a balance just polled for rb
    from msgrelay.accounts import get_accounts
    from msgrelay.balances import poll_balance
    from msgrelay.settings import get_settings
    snaps = poll_balance(get_accounts()["rb"], get_settings())
    assert snaps
    # when
    routes = _routes(api)
    # then
    pair, split = routes["pair"], routes["split"]
    assert pair["mode"] == "failover" and split["mode"] == "weighted"
    assert [(a["name"], a["weight"]) for a in pair["accounts"]] == [("ra", 1), ("rb", 1)]
    assert [(a["name"], a["weight"]) for a in split["accounts"]] == [("wa", 3), ("wb", 1)]
    for account in pair["accounts"] + split["accounts"]:
        assert set(account) == VIEW_KEYS
        assert account["provider"] == "emay_voice" and account["rate_limit"] is None
        assert (account["health"], account["paused_reason"], account["paused_since"]) == ("ok", None, None)
        assert account["balance"] is None or set(account["balance"]) == {"value", "taken_at"}
    balance = _account(routes, "pair", "rb")["balance"]
    assert Decimal(balance["value"]) == snaps[-1].amount
    assert datetime.fromisoformat(balance["taken_at"])


def test_a_paused_account_shows_why_and_since_when_until_resumed(stack, api, unpaused):
    # given ra refused for its client IP
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    _pause("ra")
    # when
    routes = _routes(api)
    # then ra is paused, with the reason and since when; its partner and the other route are not
    ra = _account(routes, "pair", "ra")
    assert (ra["health"], ra["paused_reason"]) == ("paused", REASON)
    since = datetime.fromisoformat(ra["paused_since"])
    since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    assert before <= since <= datetime.now(timezone.utc) + timedelta(seconds=5)
    assert [a["health"] for a in routes["pair"]["accounts"] + routes["split"]["accounts"]] == [
        "paused", "ok", "ok", "ok"]
    # when resumed
    answer = api.post("/v1/accounts/ra/resume")
    # then it is healthy again
    assert (answer.status_code, answer.json()) == (200, {"account": "ra", "resumed": True})
    ra = _account(_routes(api), "pair", "ra")
    assert (ra["health"], ra["paused_reason"], ra["paused_since"]) == ("ok", None, None)
    assert _paused() == {}
    # and resuming it again changes nothing, and says so
    again = api.post("/v1/accounts/ra/resume")
    assert (again.status_code, again.json()) == (200, {"account": "ra", "resumed": False})


def test_resuming_an_account_that_is_not_configured_is_404_naming_it(stack, api):
    # given no account "nosuch"; when
    answer = api.post("/v1/accounts/nosuch/resume")
    # then
    assert answer.status_code == 404, answer.text
    assert "nosuch" in answer.json()["detail"]


def test_the_cli_lists_routes_with_the_pause_reason_and_resumes(stack, unpaused):
    # given wb paused
    _pause("wb")
    # when
    listing = msgrelay("routes")
    # then both routes are listed, wb paused with its reason
    assert listing.returncode == 0, listing.stderr
    rows = {cells[2]: cells for cells in (
        [c.strip() for c in line.strip()[1:-1].split("│")] for line in listing.stdout.splitlines() if "│" in line)
        if len(cells) == 8 and cells[2]}
    assert [rows[a][0] for a in ROUTE_ACCOUNTS] == ["pair", "pair", "split", "split"]
    assert [rows[a][4] for a in ROUTE_ACCOUNTS] == ["ok", "ok", "ok", "paused"]
    assert rows["wb"][5] == REASON and rows["wb"][6].endswith(" UTC") and rows["ra"][6] == ""
    assert [rows[a][3] for a in ROUTE_ACCOUNTS] == ["", "", "3", "1"]  # weights: of a weighted route only
    listed = msgrelay("routes", "list")  # the same table by its name
    assert listed.returncode == 0 and REASON in listed.stdout and "split" in listed.stdout
    # when resumed
    resumed = msgrelay("routes", "resume", "wb")
    # then
    assert resumed.returncode == 0, resumed.stderr
    assert "account wb resumed" in resumed.stdout
    assert _paused() == {}
    again = msgrelay("routes", "resume", "wb")
    assert again.returncode == 0 and "wb was not paused" in again.stdout
    unknown = msgrelay("routes", "resume", "nosuch")
    assert unknown.returncode == 2 and "no account 'nosuch' is configured" in unknown.stderr
