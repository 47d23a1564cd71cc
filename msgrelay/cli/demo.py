"""`msgrelay demo`: the whole system on the embedded defaults against the built-in simulator."""
from __future__ import annotations

import gc
import os
import secrets
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import requests
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import func, select

from models.statuses import JobStatus, TemplateStatus
from msgrelay.cli.processes import (
    Stopped,
    Supervisor,
    free_port,
    http_ok,
    msgrelay_argv,
    wait_for,
)
from msgrelay.webhooks.listener import LocalReceiver
from providers.sending_rules import DEFAULT_TIMEZONE

DEMO_TIMEOUT_S = 600
#: the jobs whose status webhooks the demo's receiver shows (the two big ones send none: the demo stays quick)
WEBHOOK_KINDS = ("marketing", "voice_sms", "vfcode", "ims", "sms")
MMS_TOKEN = secrets.token_urlsafe(16)
MMS_OPTIONS = {"title": "周末上新", "sign_name": "【示例商城】"}


#: the demo's sending policy: marketing waits for a window that opens this long after the jobs are submitted (set in
#: the accounts file then: running processes read it again, every ACCOUNTS_RELOAD_S); a cap per number
WINDOW_OPENS_AFTER_S = 8
ACCOUNTS_RELOAD_S = 1.0
WINDOW_MARK = "# send_windows: written when the jobs are submitted"
CAP = "2/day"
#: the verification calls all go to one number, so the cap refuses the last; this number replies "TD" first
CAPPED_MOBILE, OPTED_OUT_MOBILE, SMS_USERID = "13700000000", "18800000007", "88"


def demo_window(now: datetime | None = None) -> str:
    """A send window (Asia/Shanghai, with seconds) that opens WINDOW_OPENS_AFTER_S from now and lasts six hours."""
    opens = (now or datetime.now(UTC)).astimezone(ZoneInfo(DEFAULT_TIMEZONE)) + timedelta(
        seconds=WINDOW_OPENS_AFTER_S)
    return f"{opens:%H:%M:%S}-{opens + timedelta(hours=6):%H:%M:%S}"


def write_accounts(path: Path, sim_url: str) -> None:
    """Demo accounts, all pointing at the simulator."""
    path.write_text(f"""# written by `msgrelay demo`; the simulator accepts these credentials
[accounts.voice]
provider = "emay_voice"
base_url = "{sim_url}"
app_id = "EUCP-EMY-DEMO-VOICE"
secret_key = "{secrets.token_hex(8)}"
callback_token = "{secrets.token_urlsafe(16)}"
{WINDOW_MARK}
frequency_cap = "{CAP}"  # per number per day, every kind of this account (docs/POLICY.md)

[accounts.voicesms]
provider = "emay_voice_sms"
base_url = "{sim_url}"
app_id = "EUCP-EMY-DEMO-JOIN"
secret_key = "{secrets.token_hex(8)}"

[accounts.intl]
provider = "emay_ims"
base_url = "{sim_url}"
app_id = "EUCP-EMY-DEMO-IMS"
secret_key = "{secrets.token_hex(8)}"

[accounts.mms]
provider = "ihuyi_mms"
base_url = "{sim_url}"
api_id = "DEMO-MMS-01"
api_key = "{secrets.token_hex(12)}"
product_id = 1001
callback_token = "{MMS_TOKEN}"

[accounts.sms]
provider = "qyxs_sms"
base_url = "{sim_url}"
userid = "88"
account = "demo"
password = "{secrets.token_urlsafe(12)}"
""", encoding="utf-8")


def demo_jobs(notify_recipients: int) -> list[dict]:
    """The sample jobs: a large notify, a marketing, a voice-SMS and a few verification calls."""
    def mobiles(prefix: str, n: int) -> list[str]:
        return [f"{prefix}{i:08d}" for i in range(n)]
    jobs = [
        dict(account="voice", kind="notify", recipients=mobiles("139", notify_recipients),
             content="您好，您的快递已到达驿站，请凭取件码取件。"),
        dict(account="voice", kind="marketing", recipients=mobiles("158", 1500), content="双十一会员专享优惠",
             options={"isInteractive": "1", "interactiveContent": "按1了解详情", "acousticSignContent": "请留言"}),
        dict(account="voicesms", kind="voice_sms", recipients=mobiles("186", 800), content="您有一笔账单即将到期",
             options={"smsContent": "账单详情请登录App查看", "triggerConditions": "3", "keyContent": "1"}),
    ]
    jobs += [dict(account="voice", kind="vfcode", recipients=[CAPPED_MOBILE], content=f"{1234 + i * 1111}")
             for i in range(3)]
    jobs += [
        dict(account="intl", kind="ims", recipients=[f"+614{12000000 + i:08d}" for i in range(700)],
             content="Your parcel has arrived. 您的包裹已到达。"),
        dict(account="intl", kind="ims", content=None,
             recipients=[{"mobile": f"+852912345{i:02d}", "content": f"Dear customer {i}, your code is {4000 + i}"}
                         for i in range(10)]),
        dict(account="sms", kind="sms", recipients=mobiles("188", 2500), content="【示例】您的订单已发货，回复TD退订"),
    ]
    return jobs


def mms_jobs(template_id: str | None) -> list[dict]:
    """An MMS job of 25,000 with an image made on the fly, and a small one by an approved template."""
    from msgrelay.cli.frames import sample_frames
    jobs = [dict(account="mms", kind="mms", recipients=[f"135{i:08d}" for i in range(25_000)],
                 content=sample_frames(), options=MMS_OPTIONS)]
    if template_id:
        jobs.append(dict(account="mms", kind="mms", recipients=[f"136{i:08d}" for i in range(200)],
                         options={"template_id": int(template_id)}))
    return jobs


def run_demo(*, workdir: Path, notify_recipients: int, exit_after: bool, console: Console) -> int:
    """Start everything, send the sample jobs, show progress, print the summary."""
    workdir = workdir.absolute()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    sim_port, api_port, flower_port = free_port(), free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    write_accounts(workdir / "accounts.toml", sim_url)
    os.environ.pop("MSGRELAY_BROKER_URL", None)
    hook = DemoReceiver(secret := secrets.token_urlsafe(24))
    os.environ.pop("MSGRELAY_WEBHOOK_URL", None)
    os.environ.update({
        "MSGRELAY_WEBHOOK_SECRET": secret, "MSGRELAY_WEBHOOK_DISPATCH_EVERY_S": "0.5",
        "MSGRELAY_DATABASE_URL": f"sqlite:///{workdir / 'demo.db'}",
        "MSGRELAY_ACCOUNTS_FILE": str(workdir / "accounts.toml"), "MSGRELAY_ACCOUNTS_RELOAD_S": str(ACCOUNTS_RELOAD_S),
        "MSGRELAY_POLL_REPORTS_EVERY_S": "1", "MSGRELAY_SWEEP_EVERY_S": "2", "MSGRELAY_POLL_BALANCES_EVERY_S": "10",
        "MSGRELAY_REPORT_EXPIRY_S": "120", "MSGRELAY_HTTP_READ_TIMEOUT_S": "10", "MSGRELAY_POLL_INBOUND_EVERY_S": "2",
    })
    _reload_settings()
    from models.migrate import upgrade
    from msgrelay.cli.stack import start_stack

    upgrade()
    # the block stops every child however it ends: a stop signal, the end of the demo, or an error
    with Supervisor(workdir / "logs") as sup:
        try:
            sup.start("simulator", msgrelay_argv("simulate", "--port", str(sim_port), "--report-delay", "1"),
                      dict(os.environ))
            wait_for(lambda: http_ok(sim_url + "/_sim/stats"), what="the simulator")
            stack = start_stack(sup, workdir, dict(os.environ), api_port=api_port, flower_port=flower_port,
                                console=console)
            os.environ["MSGRELAY_BROKER_URL"] = stack.env["MSGRELAY_BROKER_URL"]
            _reload_settings()
            template_id = _mms_setup(sim_url, stack.api_url, console)
            _opt_out(sim_url, console)
            window = _shut_marketing_window(workdir / "accounts.toml", console)
            # finalise the start-up's garbage now (the health checks' urllib3 pools carry `weakref.finalize`
            # callbacks): a stop signal that lands while the interpreter runs one is reported and lost
            gc.collect()
            jobs = [dict(spec, callback_url=hook.url) if spec["kind"] in WEBHOOK_KINDS else spec
                    for spec in demo_jobs(notify_recipients) + mms_jobs(template_id)]
            job_ids = _submit_all(jobs, console)
            _watch(job_ids, console, sup, hook)
            console.print(_summary(job_ids, requests.get(sim_url + "/_sim/stats", timeout=5).json()))
            console.print(_inbound_table())
            console.print(hook.table())
            console.print(_policy_table(job_ids, window))
            console.print(f"API  {stack.api_url}/docs   (jobs: {stack.api_url}/v1/jobs)\n"
                          f"console {stack.api_url}/ui   (loopback, no key: you are `local`)\n"
                          f"Flower {stack.flower_url}\nlogs {workdir / 'logs'}   database {workdir / 'demo.db'}")
            if not exit_after:
                console.print("running; Ctrl-C to stop")
                while True:
                    sup.check()
                    time.sleep(1)
            console.print("stopping…")
            return 0
        except Stopped as stop:
            console.print(f"{stop}: stopping…")
            return 0
        finally:
            hook.stop()


def _reload_settings() -> None:
    from msgrelay.settings import reload_settings
    reload_settings()


def _mms_setup(sim_url: str, api_url: str, console: Console) -> str | None:
    """Point ihuyi's pushes at our API, create a template and wait for its audit (pushed back to us)."""
    from msgrelay.accounts import get_accounts
    from msgrelay.cli.frames import sample_frames
    from msgrelay.templates import create_template, get_template

    base = f"{api_url}/callbacks/ihuyi/mms/{MMS_TOKEN}"
    requests.post(f"{sim_url}/_sim/ihuyi/push", timeout=5, json={
        "api_id": "DEMO-MMS-01", "receipt_url": f"{base}/receipt", "mo_url": f"{base}/mo",
        "template_url": f"{base}/template"}).raise_for_status()
    made = create_template(get_accounts(), "mms", title="会员日模板", content=sample_frames("会员日全场八折"),
                           sign_name="【示例商城】")
    console.print(f"MMS template {made['template_id']} created: {made['status']}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = get_template("mms", made["template_id"])["status"]
        if status != TemplateStatus.PENDING:
            console.print(f"MMS template {made['template_id']} audited by push: {status}")
            return made["template_id"] if status == TemplateStatus.APPROVED else None
        time.sleep(0.3)
    console.print("[yellow]MMS template audit did not arrive; skipping the template job[/yellow]")
    return None


def _opt_out(sim_url: str, console: Console) -> None:
    """A recipient of the SMS job replies "TD" before it is sent; the reply (polled from 企业信使) suppresses it."""
    from msgrelay.policy.suppressions import listed

    requests.post(f"{sim_url}/_sim/reply", timeout=5, json={
        "app_id": SMS_USERID, "mobile": OPTED_OUT_MOBILE, "content": "TD"}).raise_for_status()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if listed(scope="sms", mobile=OPTED_OUT_MOBILE):
            console.print(f"{OPTED_OUT_MOBILE} replied \"TD\" to account sms: suppressed for it")
            return
        time.sleep(0.3)
    console.print(f"[yellow]the \"TD\" reply of {OPTED_OUT_MOBILE} did not arrive[/yellow]")


def _shut_marketing_window(path: Path, console: Console) -> str:
    """Give marketing on `voice` a send window that opens WINDOW_OPENS_AFTER_S from now, and wait until every
    process has read the file again; returns the window."""
    window = demo_window()
    path.write_text(path.read_text(encoding="utf-8").replace(
        WINDOW_MARK, f'send_windows = {{marketing = "{window}"}}  # Asia/Shanghai'), encoding="utf-8")
    time.sleep(ACCOUNTS_RELOAD_S + 0.3)
    console.print(f"marketing on account voice may send from {window[:8]} (Beijing time): its job will wait")
    return window


def _policy_table(job_ids: list[int], window: str) -> Table:
    """What the sending policy held back or made wait, job by job (docs/POLICY.md)."""
    from models import Job, Message, session_scope

    table = Table("job", "kind", "policy", "what happened", title="sending policy")
    with session_scope() as session:
        jobs = list(session.scalars(select(Job).where(Job.id.in_(job_ids)).order_by(Job.id)))
        for job in jobs:
            if job.kind == "marketing":
                first = session.scalar(select(func.min(Message.submitted_at)).where(Message.job_id == job.id))
                table.add_row(str(job.id), job.kind, f"window from {window[:8]}", f"first sent {_local(first)}")
            for state, policy in (("SUPPRESSED", "opt-out (TD)"), ("FREQUENCY_CAP", f"cap {CAP}")):
                for m in session.scalars(select(Message).where(Message.job_id == job.id,
                                                               Message.provider_state == state).limit(3)):
                    table.add_row(str(job.id), job.kind, policy, f"{m.mobile} {m.status}")
    table.caption = f"submitted at {_local(min(j.created_at for j in jobs))} Beijing time; docs/POLICY.md"
    return table


def _local(when: datetime | None) -> str:
    """A time as Beijing time of day."""
    return when.astimezone(ZoneInfo(DEFAULT_TIMEZONE)).strftime("%H:%M:%S") if when else "never"


def _submit_all(jobs: list[dict], console: Console) -> list[int]:
    from tasks import (
        submit,  # imported only now: the Celery app reads the broker URL set above
    )

    ids = []
    for spec in jobs:
        started = time.perf_counter()
        done = submit(**spec)
        console.print(f"submitted job {done.id}: {spec['kind']} to {done.recipients} recipients in {done.chunks} "
                      f"chunks ({time.perf_counter() - started:.2f}s)")
        ids.append(done.id)
    return ids


def _watch(job_ids: list[int], console: Console, sup: Supervisor, hook: DemoReceiver) -> None:
    from models import session_scope
    from msgrelay.cli.progress import finished
    from msgrelay.jobs import view_job

    deadline = time.monotonic() + DEMO_TIMEOUT_S
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[s]}"),
                  TimeElapsedColumn(), console=console) as bar:
        tasks = {}
        events = bar.add_task("webhook events  ", total=None, s="")
        while time.monotonic() < deadline:
            made = _events_made()
            bar.update(events, total=made, completed=len(hook.seen), s=f"received by {hook.url}")
            open_jobs = 0
            with session_scope() as session:
                for job_id in job_ids:
                    v = view_job(session, job_id)
                    if job_id not in tasks:
                        tasks[job_id] = bar.add_task(f"job {job_id} {v.kind:<9}", total=v.total, s="")
                    waits = f" ({v.waiting})" if v.waiting else ""
                    bar.update(tasks[job_id], completed=finished(v.counts),
                               s=f"{v.status}{waits} delivered={v.counts['delivered']} failed={v.counts['failed']}")
                    open_jobs += v.status not in (JobStatus.DONE, JobStatus.CANCELLED)
            if not open_jobs and len(hook.seen) >= made:
                return
            if dead := sup.dead():
                raise RuntimeError(f"{', '.join(dead)} exited; see the logs")
            time.sleep(0.5)
    console.print("[yellow]timed out waiting for the jobs[/yellow]")


def _events_made() -> int:
    """How many webhook events the database has written so far."""
    from models import WebhookEvent, session_scope
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(WebhookEvent))


class DemoReceiver(LocalReceiver):
    """The producer's side of the demo: a local webhook receiver that verifies signatures and keeps events."""

    def __init__(self, secret: str) -> None:
        self.seen: dict[str, dict] = {}
        self.refused = 0
        super().__init__([secret], self._keep)

    def _keep(self, ok: bool, events: list[dict]) -> None:
        for event in events:
            self.seen.setdefault(event["id"], event)  # at least once: drop repeats by id
        self.refused += not ok

    def table(self) -> Table:
        """Events received, by type, with the last job events."""
        by_type: dict[str, int] = {}
        for event in list(self.seen.values()):
            by_type[event["type"]] = by_type.get(event["type"], 0) + 1
        table = Table("status webhook event", "received", title="status webhooks (signed, verified)")
        for kind in sorted(by_type):
            table.add_row(kind, str(by_type[kind]))
        table.add_row("[dim]distinct events / refused signatures[/dim]", f"{len(self.seen)} / {self.refused}")
        table.caption = f"received at {self.url}; see docs/WEBHOOKS.md, `msgrelay webhooks deliveries`"
        return table


def _inbound_table(accounts: tuple[str, ...] = ("sms", "mms"), wait_s: float = 6.0) -> Table:
    """Replies the simulator's recipients sent back (polled from 企业信使, pushed by ihuyi): newest 5 of each."""
    from msgrelay.inbound import list_inbound

    deadline = time.monotonic() + wait_s
    while not all(list_inbound(account=a, limit=1) for a in accounts) and time.monotonic() < deadline:
        time.sleep(0.5)
    table = Table("account", "from", "reply", "received at", title="inbound messages")
    for account in accounts:
        for m in list_inbound(account=account, limit=5):
            table.add_row(m["account"], m["mobile"], m["content"], m["received_at"] or "")
    return table


def _summary(job_ids: list[int], sim_stats: dict) -> Table:
    from models import Chunk, session_scope
    from msgrelay.jobs import view_job

    table = Table("job", "account", "kind", "status", "recipients", "requests", "delivered", "failed", "expired",
                  "rejected", "unknown", title="msgrelay demo")
    with session_scope() as session:
        for job_id in job_ids:
            v = view_job(session, job_id)
            attempts = session.scalar(select(func.coalesce(func.sum(Chunk.attempts), 0)).where(Chunk.job_id == job_id))
            c = v.counts
            table.add_row(str(v.id), v.account, v.kind, v.status, str(v.total), str(attempts), str(c["delivered"]),
                          str(c["failed"]), str(c["expired"]), str(c["rejected"]), str(c["unknown"]))
    table.caption = (f"simulator: {sim_stats.get('accepted_recipients')} recipients accepted, "
                     f"{sim_stats.get('duplicates')} duplicates")
    return table
