"""The `msgrelay` commands (DESIGN §4); provider-specific ones are registered from `mms` and `sms`."""
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from models.statuses import Queue
from msgrelay.cli import mms, routes, sms, suppress, webhooks
from msgrelay.cli.console import EXIT_USAGE, console, err, fail, print_error
from msgrelay.cli.frames import FRAME_HELP
from msgrelay.cli.startup import needs_accounts
from providers.errors import ConfigError, InvalidInput

app = typer.Typer(help="msgrelay: bulk voice, voice-SMS, international SMS, MMS and SMS.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
ALL_QUEUES = ",".join(Queue)
WORKER_POOLS = ("prefork", "threads")


@app.command()
def demo(exit_after: bool = typer.Option(False, "--exit", help="Exit after the summary instead of waiting for Ctrl-C."),
         recipients: int = typer.Option(10_000, help="Recipients of the notify job."),
         workdir: Path = typer.Option(Path(".msgrelay-demo"), help="Where the demo keeps its database and logs.")) -> None:
    """Run everything on the embedded defaults (Redis, SQLite, simulator) and send sample jobs of every kind."""
    from msgrelay.cli.demo import run_demo
    sys.exit(run_demo(workdir=workdir, notify_recipients=recipients, exit_after=exit_after, console=console))


@app.command()
@needs_accounts
def up(api_port: int = typer.Option(8000), flower_port: int = typer.Option(5555),
       workdir: Path = typer.Option(Path(".msgrelay"))) -> None:
    """Run workers, beat, API and Flower against the real accounts.toml (embedded Redis when no broker is set)."""
    from msgrelay.cli.stack import run_up
    sys.exit(run_up(workdir=workdir, api_port=api_port, flower_port=flower_port, console=console))


@app.command()
@needs_accounts
def worker(queues: str = typer.Option(ALL_QUEUES, help="Comma-separated queues: otp, bulk, poll, webhooks."),
           concurrency: int = typer.Option(4, help="Threads (or processes with --pool prefork)."),
           pool: str = typer.Option("threads", help="threads (one process: sends and polls wait on the network "
                                                     "and the database, and share one interpreter's memory) or "
                                                     "prefork (a process each, about 110 MB apiece)."),
           loglevel: str = typer.Option("INFO"), beat: bool = typer.Option(False, help="Embed beat (tests, tiny setups)."),
           schedule_file: Path = typer.Option(Path(".celerybeat-schedule"),
                                              help="The embedded beat's schedule (with --beat): one per beat, never "
                                                   "shared by two that run at once."),
           nice: int = typer.Option(0, min=-20, max=19, help="Change this worker's CPU priority (and its session's, "
                                                               "when it leads one): `msgrelay up` runs the otp "
                                                               "worker at -10 (raising needs CAP_SYS_NICE), bulk "
                                                               "and poll at 10, webhooks at 19.")) -> None:
    """One Celery worker (every queue by default, so a single worker always makes progress)."""
    bad = [q for q in queues.split(",") if q not in ALL_QUEUES.split(",")]
    if bad:
        fail(f"--queues: unknown queue {bad[0]!r}; known: {ALL_QUEUES}")
    if pool not in WORKER_POOLS:
        fail(f"--pool: {pool!r} is not one of {', '.join(WORKER_POOLS)}")
    if nice:  # before the pool starts: its threads or processes inherit it
        from msgrelay.cli.priority import change_priority
        console.print(f"worker {queues}: {change_priority(nice)}")
    from tasks import app as celery_app
    argv = ["worker", "-Q", queues, "-c", str(concurrency), "-P", pool, "-l", loglevel, "-E",
            "--prefetch-multiplier", "1", "-n", f"{queues.replace(',', '-')}@%h"]
    if beat:
        argv += ["-B", "-s", str(schedule_file.absolute())]
    celery_app.worker_main(argv)


@app.command("beat")
@needs_accounts
def beat_cmd(schedule_file: Path = typer.Option(Path("celerybeat-schedule")), loglevel: str = typer.Option("INFO")) -> None:
    """The one beat (run exactly one): report polls, balance polls, sweeper."""
    from tasks import app as celery_app
    celery_app.start(["beat", "-s", str(schedule_file), "-l", loglevel])


@app.command("api")
@needs_accounts
def api_cmd(host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8000),
            nice: int = typer.Option(0, min=-20, max=19, help="Change the API's CPU priority (and its session's, "
                                                               "when it leads one): `msgrelay up` runs it at -10, "
                                                               "as the otp worker (raising needs CAP_SYS_NICE).")) -> None:
    """The HTTP API (producer routes, push receivers, /docs)."""
    import uvicorn

    from msgrelay.accounts import api_keys_of, get_accounts
    from msgrelay.settings import get_settings
    if host not in ("127.0.0.1", "localhost", "::1") and get_settings().api_token is None and not api_keys_of(
            get_accounts()):
        fail("--host: binding beyond loopback needs MSGRELAY_API_TOKEN set or [api_keys.NAME] in the accounts file "
             "(the API would be open)")
    if nice:  # before uvicorn starts its threads: they inherit it
        from msgrelay.cli.priority import change_priority
        console.print(f"api: {change_priority(nice)}")
    from msgrelay.logs import uvicorn_log_config
    uvicorn.run("api.app:app", host=host, port=port, access_log=False, log_level="info",
                log_config=uvicorn_log_config())


@app.command()
@needs_accounts
def flower(port: int = typer.Option(5555), address: str = typer.Option("127.0.0.1")) -> None:
    """Flower on the broker (basic auth from FLOWER_BASIC_AUTH when set)."""
    from tasks import app as celery_app
    celery_app.start(["flower", f"--port={port}", f"--address={address}"])


@app.command()
@needs_accounts
def simulate(host: str = typer.Option("127.0.0.1"), port: int = typer.Option(18080),
             report_delay: float = typer.Option(0.5, help="Seconds before a report is ready.")) -> None:
    """The provider simulator, for the accounts of the accounts file."""
    from msgrelay.accounts import get_accounts
    from providers.simulator import config_from_accounts, serve
    serve(config_from_accounts(get_accounts(), report_delay_s=report_delay), host=host, port=port)


def _is_file(to: str) -> bool:
    try:
        return Path(to).is_file()
    except OSError:  # e.g. a long list of numbers is no file name
        return False


def _read_recipients(to: str) -> list:
    """Recipients from a file (one mobile, or mobile,content, per line) or a comma-separated list."""
    path = Path(to)
    if _is_file(to):
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        out = []
        for ln in lines:
            mobile, _, content = ln.partition(",")
            out.append({"mobile": mobile.strip(), "content": content.strip()} if content else mobile.strip())
        return out
    return [m.strip() for m in to.split(",") if m.strip()]


def _aware_time(option: str, value: Optional[str]) -> Optional[datetime]:
    """An ISO 8601 time with its zone, or None; fail naming `option` on anything else."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"{option}: {value!r} is not an ISO 8601 time, e.g. 2026-12-05T18:00:00+08:00")
    if when.tzinfo is None:  # a bare clock time would depend on this machine's zone
        fail(f"{option}: {value!r} has no time zone; add one, e.g. 2026-12-05T18:00:00+08:00")
    return when


@app.command()
@needs_accounts
def send(account: str, kind: str,
         to: str = typer.Option(..., "--to", help="A file (one mobile per line, or mobile,content) or comma-separated mobiles."),
         content: Optional[str] = typer.Option(None), option: list[str] = typer.Option([], help="key=value, the provider's own names."),
         frame: list[str] = typer.Option([], help=FRAME_HELP),
         idempotency_key: Optional[str] = typer.Option(None), wait: bool = typer.Option(False),
         callback_url: Optional[str] = typer.Option(None, help="Where this job's signed status webhooks go "
                                                               "(default: MSGRELAY_WEBHOOK_URL)."),
         send_at: Optional[str] = typer.Option(None, help="Send then, not now: ISO 8601 with a zone, "
                                                          "e.g. 2026-12-05T09:00:00+08:00."),
         valid_until: Optional[str] = typer.Option(None, help="ISO 8601 with a zone: what has not reached the "
                                                              "provider by then ends expired (NOT_SENT_IN_TIME), "
                                                              "unsent.")) -> None:
    """Submit a job through ACCOUNT (or, when no account has that name, through the route of that name)."""
    from msgrelay.accounts import get_accounts, routes_of
    from msgrelay.submit import submit_job
    from tasks import enqueue_chunks
    options = {}
    for item in option:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--option: {item!r} must be key=value")
        options[key] = value
    when, until = _aware_time("--send-at", send_at), _aware_time("--valid-until", valid_until)
    try:
        if frame:
            from msgrelay.cli.frames import frames_from_cli
            content = frames_from_cli(frame)
        accounts = get_accounts()
        route = account if account not in accounts and account in routes_of(accounts) else None
        done = submit_job(accounts=accounts, account=None if route else account, route=route, kind=kind,
                          recipients=_read_recipients(to),
                          content=content, options=options, idempotency_key=idempotency_key, enqueue=enqueue_chunks,
                          callback_url=callback_url, send_at=when, valid_until=until)
    except InvalidInput as exc:
        fail(f"{exc.field}: {exc.rule}")
    console.print(f"job [bold]{done.id}[/bold]: {done.recipients} recipients in {done.chunks} chunks"
                  + ("" if done.created else " (existing job for this idempotency key)"))
    if wait:
        job(done.id, wait=True)


@app.command()
def job(job_id: int, wait: bool = typer.Option(False, help="Show a progress bar until the job ends.")) -> None:
    """One job's status and counts."""
    from msgrelay.cli.progress import show_job, wait_job
    try:
        wait_job(job_id, console) if wait else show_job(job_id, console)
    except InvalidInput as exc:
        fail(f"{exc.field}: {exc.rule}")


@app.command()
def jobs(limit: int = typer.Option(20)) -> None:
    """The newest jobs."""
    from msgrelay.cli.progress import jobs_table
    console.print(jobs_table(limit))


@app.command()
@needs_accounts
def balance(refresh: bool = typer.Option(True, help="Ask the providers now (else show the last snapshots).")) -> None:
    """Balances of every account."""
    from msgrelay.accounts import get_accounts
    from msgrelay.balances import latest_balances, poll_balance
    from msgrelay.settings import get_settings
    from providers.errors import ProviderError
    if refresh:
        for acct in get_accounts().values():
            try:
                poll_balance(acct, get_settings())
            except ProviderError as exc:
                err.print(f"[yellow]{acct.name}[/yellow]: {exc}")
    table = Table("account", "provider", "product", "balance", "taken at")
    for row in latest_balances():
        table.add_row(row["account"], row["provider"], row["product"] or "", row["balance"], row["taken_at"])
    console.print(table)


@app.command()
def inbound(account: Optional[str] = typer.Option(None), limit: int = typer.Option(50)) -> None:
    """Inbound messages (replies) of every provider, newest first."""
    from msgrelay.inbound import list_inbound
    table = Table("id", "account", "mobile", "content", "received at", "task")
    for m in list_inbound(account=account, limit=limit):
        table.add_row(str(m["id"]), m["account"], m["mobile"], m["content"], m["received_at"] or "", m["task_id"] or "")
    console.print(table)


def _lifecycle(action: str, job_id: int) -> None:
    from msgrelay import audit, operations
    from tasks import enqueue_chunks
    try:
        if action == "pause":
            operations.pause_job(job_id, by=audit.CLI)
        elif action == "resume":
            operations.resume_job(job_id, by=audit.CLI, enqueue=enqueue_chunks)
        else:
            operations.cancel_job(job_id, by=audit.CLI)
    except InvalidInput as exc:
        fail(f"{exc.field}: {exc.rule}")
    job(job_id, wait=False)


@app.command()
def pause(job_id: int) -> None:
    """Pause a job (resume sends the rest)."""
    _lifecycle("pause", job_id)


@app.command()
def resume(job_id: int) -> None:
    """Resume a paused job."""
    _lifecycle("resume", job_id)


@app.command()
def cancel(job_id: int) -> None:
    """Cancel a job; its unsent messages become rejected."""
    _lifecycle("cancel", job_id)


@app.command()
def doctor(job_id: Annotated[int | None, typer.Option("--job", help="Check this job only.")] = None) -> None:
    """Check the per-job message counters against a recount of the messages; exit 1 on any mismatch."""
    from sqlalchemy import func, select

    from models import Job, session_scope
    from models.counts import recount_mismatches
    from msgrelay.jobs import get_job
    try:
        with session_scope() as session:
            if job_id is not None:
                get_job(session, job_id)
            mismatches = recount_mismatches(session, None if job_id is None else [job_id])
            checked = 1 if job_id is not None else session.scalar(select(func.count()).select_from(Job))
    except InvalidInput as exc:
        fail(f"{exc.field}: {exc.rule}")
    if mismatches:
        table = Table("job", "status", "counted", "recounted", title="counters that disagree with a recount")
        for mismatch in mismatches:
            table.add_row(*(str(v) for v in mismatch))
        console.print(table)
        raise typer.Exit(1)
    console.print(f"counters agree with a recount for {checked} job{'' if checked == 1 else 's'}")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Create or migrate the schema (Alembic)."""
    from models.migrate import upgrade
    from msgrelay.settings import get_settings
    upgrade(revision=revision)
    url = get_settings().database_url
    console.print(f"database at {revision}: {url.split('@')[-1] if '@' in url else url}")


mms.register(app)
sms.register(app)
webhooks.register(app)
suppress.register(app)
routes.register(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ConfigError as exc:  # a command that reads the accounts without @needs_accounts: same message, same code
        print_error(f"config: {exc}")
        sys.exit(EXIT_USAGE)

