"""Where a verification call's time goes, step by step: from its POST to the API's write (the job's `created_at`),
from the write to the otp worker taking its task (the worker's log), and from there to the provider reading its
request (the simulator's record). Every clock is this machine's; the worker logs whole milliseconds."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

#: Celery's line for a task the worker has taken, and msgrelay's for what a send_chunk task did with its chunk
_RECEIVED = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): \w+/\w+\] Task tasks\.send_chunk\[([\w-]+)\] received")
_CHUNK = re.compile(r"^\[[^\]]+\] tasks\.send_chunk\[([\w-]+)\]: chunk (\d+): ")
STEPS = ("POST to the API's write", "the write to the otp worker taking it", "the otp worker to the provider")


@dataclass(frozen=True)
class Steps:
    """One call's steps, in milliseconds (in the order of STEPS)."""

    to_write_ms: float
    to_worker_ms: float
    to_provider_ms: float


def taken_at(lines: Iterable[str]) -> dict[int, float]:
    """When the otp worker took each chunk's task (Unix seconds), from its log's lines."""
    received: dict[str, float] = {}
    taken: dict[int, float] = {}
    for line in lines:
        if m := _RECEIVED.match(line):
            received[m[2]] = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # the worker's local time
        elif (m := _CHUNK.match(line)) and m[1] in received:
            taken[int(m[2])] = received[m[1]]
    return taken


def call_steps(posted: Sequence[tuple[str, float, float]], written: Mapping[str, tuple[float, int]],
               taken: Mapping[int, float]) -> list[Steps]:
    """The steps of each call that left a trace at each step: `posted` (mobile, POST time, ms to the provider),
    `written` (mobile → the job's created_at, its chunk id), `taken` (chunk id → when the otp worker took it)."""
    steps = []
    for mobile, posted_at, to_provider_ms in posted:
        if mobile not in written or written[mobile][1] not in taken:
            continue
        created, chunk_id = written[mobile]
        arrived, took = posted_at + to_provider_ms / 1000, taken[chunk_id]
        steps.append(Steps((created - posted_at) * 1000, (took - created) * 1000, (arrived - took) * 1000))
    return steps


def written_calls(engine) -> dict[str, tuple[float, int]]:
    """Each verification call's mobile → its job's created_at (Unix seconds) and its chunk's id."""
    from sqlalchemy import select

    from models import Chunk, Job, Message
    query = (select(Message.mobile, Job.created_at, Chunk.id).join(Job, Job.id == Message.job_id)
             .join(Chunk, Chunk.job_id == Job.id).where(Job.kind == "vfcode"))
    with engine.connect() as conn:
        return {mobile: (created.timestamp(), chunk_id) for mobile, created, chunk_id in conn.execute(query)}


def steps_line(idle: Sequence[Steps], during: Sequence[Steps], pct) -> str:
    """Each step's p50 / p99 idle and during the job."""
    parts = []
    for i, name in enumerate(STEPS):
        before, load = ([astuple(s)[i] for s in group] for group in (idle, during))
        parts.append(f"{name} {pct(before, 50):.0f} / {pct(before, 99):.0f} → {pct(load, 50):.0f} / "
                     f"{pct(load, 99):.0f} ms")
    return "  step by step, p50 / p99 idle → during: " + "; ".join(parts)


def astuple(steps: Steps) -> tuple[float, float, float]:
    """The steps in the order of STEPS."""
    return steps.to_write_ms, steps.to_worker_ms, steps.to_provider_ms


def otp_log_lines(log_dir: Path) -> Iterable[str]:
    """The otp worker's log, line by line."""
    with open(log_dir / "worker-otp.log", errors="replace") as log:
        yield from log
