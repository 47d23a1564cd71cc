"""The process stack shared by `msgrelay up` and `msgrelay demo`: Redis (embedded when no broker is set),
an otp worker, a bulk+poll worker, a webhooks worker, one beat, the API and Flower."""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from models.statuses import Queue
from msgrelay.metrics import MULTIPROC_ENV
from msgrelay.cli.priority import nice_argv
from msgrelay.cli.processes import Stopped, Supervisor, http_ok, msgrelay_argv, start_embedded_redis, wait_for


@dataclass
class Stack:
    """Running processes and where to find them."""

    sup: Supervisor
    env: dict[str, str]
    api_url: str
    flower_url: str


def start_stack(sup: Supervisor, workdir: Path, env: dict[str, str], *, api_port: int, flower_port: int,
                console: Console) -> Stack:
    """Start every process under `sup`; the broker is embedded Redis unless MSGRELAY_BROKER_URL is set."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(env)
    if not env.get("MSGRELAY_BROKER_URL"):
        env["MSGRELAY_BROKER_URL"] = start_embedded_redis(sup, workdir)
        niceness = os.getpriority(os.PRIO_PROCESS, sup.children["redis"].pid)
        console.print(f"embedded Redis at {env['MSGRELAY_BROKER_URL']} (niceness {niceness})")
    if not env.get(MULTIPROC_ENV):  # every process counts into files here; the API's /metrics adds them up
        counted = workdir / "prometheus"
        shutil.rmtree(counted, ignore_errors=True)
        counted.mkdir()
        env[MULTIPROC_ENV] = str(counted)
    # verification calls and the API go first, sends, reports and deliveries yield the CPU (msgrelay.cli.priority)
    sup.start("worker-otp", msgrelay_argv("worker", "--queues", Queue.OTP, "--concurrency", "1",
                                          *nice_argv(Queue.OTP)), env)
    sup.start("worker-bulk", msgrelay_argv("worker", "--queues", Queue.BULK, "--concurrency", "4",
                                           *nice_argv(Queue.BULK)), env)
    # report polls apart from sends, as in compose: parsing pages never holds the interpreter a send needs
    # between its chunk's claim and its request leaving
    sup.start("worker-poll", msgrelay_argv("worker", "--queues", Queue.POLL, "--concurrency", "2",
                                           *nice_argv(Queue.POLL)), env)
    # webhooks in their own process: a receiver that is slow or down never takes a thread from sending or reports,
    # and deliveries yield the CPU to them
    sup.start("worker-webhooks", msgrelay_argv("worker", "--queues", Queue.WEBHOOKS, "--concurrency", "4",
                                               *nice_argv(Queue.WEBHOOKS)), env)
    sup.start("beat", msgrelay_argv("beat", "--schedule-file", str(workdir / "celerybeat-schedule")), env)
    sup.start("api", msgrelay_argv("api", "--port", str(api_port), *nice_argv()), env)
    sup.start("flower", msgrelay_argv("flower", "--port", str(flower_port)), env)
    api_url, flower_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{flower_port}"
    wait_for(lambda: http_ok(api_url + "/healthz"), what="the API", timeout_s=60)
    return Stack(sup, env, api_url, flower_url)


def run_up(*, workdir: Path, api_port: int, flower_port: int, console: Console) -> int:
    """`msgrelay up`: migrate, start the stack on the real accounts, supervise until SIGINT, SIGTERM or SIGHUP."""
    from models.migrate import upgrade
    from msgrelay.accounts import get_accounts

    accounts = get_accounts()  # checked already by @needs_accounts, before any child could start
    upgrade()
    # the block stops every child however it ends: a stop signal, a dead child, or an error while starting
    with Supervisor(workdir / "logs") as sup:
        try:
            stack = start_stack(sup, workdir, dict(os.environ), api_port=api_port, flower_port=flower_port,
                                console=console)
            console.print(f"{len(accounts)} accounts; API {stack.api_url}/docs  console {stack.api_url}/ui  "
                          f"Flower {stack.flower_url}  "
                          f"logs {workdir}/logs")
            while not (dead := sup.dead()):
                time.sleep(1)
            console.print(f"[red]stopped:[/red] {', '.join(dead)} exited; see {workdir}/logs")
            return 1
        except Stopped as stop:
            console.print(f"{stop}: stopping…")
            return 0
