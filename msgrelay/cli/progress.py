"""Rich views of jobs: a table, one job's counts, a live progress bar."""
from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from models import Job, session_scope
from msgrelay.jobs import view_job
from models.statuses import FINAL_MESSAGE_STATUSES, JobStatus, MessageStatus

SHOWN = tuple(MessageStatus)


def finished(counts: dict[str, int]) -> int:
    """Messages in a final status."""
    return sum(n for s, n in counts.items() if s in FINAL_MESSAGE_STATUSES)


def jobs_table(limit: int = 20) -> Table:
    """The newest jobs with their counts."""
    table = Table("id", "account", "kind", "status", "total", *SHOWN)
    with session_scope() as session:
        for job_id in session.scalars(select(Job.id).order_by(Job.id.desc()).limit(limit)):
            v = view_job(session, job_id)
            status = v.status + (f" ({v.reason})" if v.reason else "")
            table.add_row(str(v.id), v.account, v.kind, status, str(v.total), *(str(v.counts[s]) for s in SHOWN))
    return table


def show_job(job_id: int, console: Console) -> None:
    """Print one job's status and counts."""
    with session_scope() as session:
        v = view_job(session, job_id)
    console.print(f"job {v.id} [{v.account}/{v.kind}] {v.status}" + (f" ({v.reason})" if v.reason else ""))
    console.print("  " + "  ".join(f"{s}={v.counts[s]}" for s in SHOWN if v.counts[s]))


def wait_job(job_id: int, console: Console, *, every_s: float = 0.5) -> None:
    """A live progress bar of final messages until the job is done, cancelled or paused."""
    with Progress(TextColumn("job {task.fields[job]} {task.fields[status]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=console) as bar:
        task = None
        while True:
            with session_scope() as session:
                v = view_job(session, job_id)
            detail = " ".join(f"{s}={v.counts[s]}" for s in SHOWN if v.counts[s])
            if task is None:
                task = bar.add_task("", total=v.total, job=v.id, status=v.status, detail=detail)
            bar.update(task, completed=finished(v.counts), status=v.status, detail=detail)
            if v.status in (JobStatus.DONE, JobStatus.CANCELLED, JobStatus.PAUSED):
                break
            time.sleep(every_s)
    show_job(job_id, console)
