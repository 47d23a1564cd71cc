"""The console in a real browser: Debian's headless Chromium driven by Playwright against a real API process, the
session's worker, Redis, database and simulator. Each test saves screenshots of the pages it visits to
MSGRELAY_ARTIFACTS (default `test-artifacts/console/`), so a reviewer can see what the operator sees."""
from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from msgrelay.cli.processes import Supervisor, free_port, http_ok, msgrelay_argv, wait_for
from tests.conftest import TEST_DIR
from tests.e2e.conftest import job_view, mobiles, wait_until
from tests.e2e.console_keys import TOKENS, keyed_accounts_file

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
CHROMIUM = os.environ.get("MSGRELAY_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("MSGRELAY_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts" / "console"))
#: what the machine's probe found Chromium needs here (no sandbox as root, no calls home on a closed network)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def console(stack) -> Iterator[str]:
    """A real API process (uvicorn) whose accounts file has the console's keys; the session's worker sends."""
    path = keyed_accounts_file("accounts-browser.toml")
    env = {**os.environ, "MSGRELAY_ACCOUNTS_FILE": str(path)}
    env.pop("MSGRELAY_API_TOKEN", None)
    port = free_port()
    sup = Supervisor(TEST_DIR / "logs")
    sup.start("api-console", msgrelay_argv("api", "--port", str(port)), env)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_ok(url + "/healthz"), what="the API", timeout_s=60)
    yield url
    sup.stop_all(timeout_s=10)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from Debian (`make test` installs it when missing)."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get)"
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def shot(page, name: str) -> None:
    """Save the whole page as test-artifacts/console/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page, console: str, key: str, then: str = "/ui/jobs") -> None:
    page.goto(f"{console}{then}")
    assert "/ui/login" in page.url  # every page asks for a login first
    page.fill("input[name=token]", TOKENS[key])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(then) + "$"))


def submit(console: str, token: str, job: dict) -> int:
    """POST /v1/jobs with a key's bearer token, as a producer does."""
    answer = requests.post(f"{console}/v1/jobs", json=job, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def test_login_page(page, console):
    page.goto(f"{console}/ui/login")
    page.fill("input[name=token]", "not-a-key")
    page.click("button[type=submit]")
    assert "wrong token" in page.inner_text("[role=alert]")
    shot(page, "01-login-refused")


def test_a_10000_recipient_jobs_progress_bar_moves_to_done(page, console, sim):
    sim.post("faults", {"latency_s": 0.25})  # about 5 s of sending: long enough to watch
    try:
        job_id = submit(console, TOKENS["producer_voice"], {"account": "voice", "kind": "notify",
                                                            "content": "您的快递已到，请及时领取", "recipients": mobiles("135", 10_000)})
        log_in(page, console, "ops")
        row = page.locator(f'tr[data-job="{job_id}"]')
        bar = row.locator(".bar")
        seen, shots = [], 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = row.locator('[data-field="status"]').inner_text()
            seen.append((status, int(bar.get_attribute("aria-valuenow"))))
            if status == "running" and 0 < seen[-1][1] < 10_000 and shots == 0:
                shot(page, "02-jobs-running")
                shots += 1
            if status == "done":
                break
            time.sleep(0.3)
    finally:
        sim.post("faults", {})
    assert seen[-1][0] == "done", seen[-10:]
    assert seen[0][0] != "done" and len({v for _, v in seen}) >= 3, seen  # the bar moved as the page watched
    widths = sum(float(w.rstrip("%")) for w in row.locator(".seg").evaluate_all("els => els.map(e => e.style.width)"))
    assert widths == pytest.approx(100, abs=0.1)  # every recipient final, drawn
    assert "10,000 of 10,000 final" in row.inner_text()
    shot(page, "03-jobs-done")
    page.click(f'a[href="/ui/jobs/{job_id}"]')
    page.wait_for_selector(".funnel li")  # count() and all_inner_texts() read what is there now: wait for the page
    assert page.locator("svg.chart polyline").count() == 3
    funnel = page.locator(".funnel li").all_inner_texts()
    assert funnel[0].split() == ["recipients", "10,000"]
    shot(page, "04-job-done")


def test_pause_and_resume_a_job_and_see_the_audit_entry(page, console):
    later = "2099-01-01T09:00:00+08:00"
    job_id = submit(console, TOKENS["ops"], {"account": "voice", "kind": "notify", "content": "明天上午九点停水",
                                             "recipients": mobiles("134", 1200), "send_at": later})
    log_in(page, console, "ops", f"/ui/jobs/{job_id}")
    assert page.inner_text("h1 .chip") == "queued"
    page.click("button:text-is('Pause')")
    page.wait_for_selector(".flash.ok")
    assert page.inner_text(".flash.ok") == "paused" and page.inner_text("h1 .chip") == "paused"
    assert "Paused: operator" in page.inner_text(".why")
    shot(page, "05-job-paused")
    assert job_view(job_id)["status"] == "paused"
    page.click("button:text-is('Resume')")
    page.wait_for_selector(".flash.ok")
    assert page.inner_text("h1 .chip") == "queued" and job_view(job_id)["status"] == "queued"
    page.click("nav a:text-is('Audit')")
    page.wait_for_selector("table.audit tbody tr")  # as above: the audit page may still be loading
    rows = page.locator("table.audit tbody tr").all_inner_texts()
    assert [r.split("\t")[1:4] for r in rows[:2]] == [["ops", "job.resume", f"job:{job_id}"],
                                                       ["ops", "job.pause", f"job:{job_id}"]]
    shot(page, "06-audit")
    page.goto(f"{console}/ui/jobs/{job_id}")
    page.click("button:text-is('Cancel')")
    page.wait_for_selector(".flash.ok")
    assert job_view(job_id)["status"] == "cancelled"


def test_add_a_suppression(page, console):
    log_in(page, console, "ops", "/ui/suppressions")
    page.fill("form.add input[name=mobile]", "+86 133 0000 0042")
    page.select_option("form.add select[name=scope]", "voice")
    page.fill("form.add input[name=reason]", "用户来电要求不再联系")
    page.click("form.add button[type=submit]")
    assert page.inner_text(".flash.ok") == "13300000042 suppressed (voice)"
    row = page.locator("tbody tr", has_text="13300000042")
    assert "用户来电要求不再联系" in row.inner_text() and "voice" in row.inner_text()
    shot(page, "07-suppressions")
    from models import session_scope
    from msgrelay.audit import list_audit
    with session_scope() as session:
        assert list_audit(session, limit=1)[0]["target"] == "suppression:voice:13300000042"


def test_a_viewer_sees_no_action_buttons(page, console):
    later = "2099-01-01T09:00:00+08:00"
    job_id = submit(console, TOKENS["ops"], {"account": "voice", "kind": "notify", "content": "通知",
                                             "recipients": mobiles("132", 5), "send_at": later})
    log_in(page, console, "viewer", f"/ui/jobs/{job_id}")
    assert page.locator(".actions").count() == 0 and page.locator("main form[method=post]").count() == 0
    for path in ("/ui/suppressions", "/ui/webhooks", "/ui/accounts", "/ui/jobs"):
        page.goto(console + path)
        assert page.locator("main form[method=post]").count() == 0, path
    shot(page, "08-viewer-jobs")
    # a form forged with the viewer's own session is refused, and the job is untouched
    answer = page.request.post(f"{console}/ui/jobs/{job_id}/pause", form={"csrf": "x"})
    assert answer.status == 403 and job_view(job_id)["status"] == "queued"


def test_every_page_screenshot(page, console, sim):
    sim.post("reply", {"app_id": "15", "mobile": "13900000077", "content": "收到，周三下午方便接听"})
    wait_until(lambda: _inbound_has("周三下午"), timeout_s=30, what="the reply polled")
    log_in(page, console, "ops", "/ui/accounts")
    assert page.locator('tr[data-account="voice"]').count() == 1
    shot(page, "09-accounts")
    page.goto(f"{console}/ui/inbound")
    assert "收到，周三下午方便接听" in page.inner_text("main")  # Chinese text as the provider sent it
    shot(page, "10-inbound")
    page.goto(f"{console}/ui/webhooks")
    shot(page, "11-webhooks")


def _inbound_has(text: str) -> bool:
    from msgrelay.inbound import list_inbound
    return any(text in (m["content"] or "") for m in list_inbound(limit=20))
