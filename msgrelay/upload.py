"""Submit from a stream: a job of any size read in batches and written in one transaction, in constant memory.

The same checks as `submit_job`, made batch by batch while the rows are written; a refusal anywhere rolls the
whole job back, so nothing is half-written. What needs the whole job (exact repeats, a mobile listed twice where
reports tell recipients apart by mobile, a custom id used twice) is asked of the database with set-based
statements instead of held in memory.
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from models import Message, session_scope, utcnow
from models.statuses import HeldBack, JobStatus
from msgrelay import right_of_way
from msgrelay.accounts import Account
from msgrelay.policy.suppressions import Lookup
from msgrelay.submit import (
    MAX_RECIPIENTS_PER_JOB, Enqueue, Submitted, _by_key, _check_custom_ids, add_chunks, drop_repeats, hold_at_submit,
    insert_recipients, new_job, precheck, prepare, publish, recipient_from,
)
from msgrelay.settings import get_settings
from providers.errors import InvalidInput

BATCH_ROWS = 10_000
_INDEX = re.compile(r"^recipients\[(\d+)\]")


def _at(exc: InvalidInput, offset: int) -> InvalidInput:
    """The refusal with its recipient index counted from the start of the stream, not of the batch."""
    field = _INDEX.sub(lambda m: f"recipients[{int(m.group(1)) + offset}]", exc.field)
    return type(exc)(field, exc.rule)


def submit_stream(*, accounts: Mapping[str, Account], account: str | None = None, kind: str,
                  recipients: Iterable[Any], enqueue: Enqueue, content: Any = None,
                  options: Mapping[str, Any] | None = None, idempotency_key: str | None = None,
                  send_at: datetime | None = None, callback_url: str | None = None,
                  valid_until: datetime | None = None, route: str | None = None) -> Submitted:
    """Validate and write a job whose recipients come from an iterable of any length (lines of an upload),
    holding one batch at a time; then enqueue its chunks."""
    job = prepare(accounts, account, kind, content=content, options=options, idempotency_key=idempotency_key,
                  send_at=send_at, callback_url=callback_url, valid_until=valid_until, route=route)
    items = iter(recipients)
    now = utcnow()
    try:
        with session_scope() as session:
            if idempotency_key and (old := _by_key(session, idempotency_key)):
                return Submitted(old.id, old.total, old.chunks, created=False)
            row = new_job(session, job, now=now, total=0)
            seq = inserted = removed = suppressed = 0  # seq counts lines, so a refusal names the line
            lookup = Lookup(session, job.scopes())
            give_way = right_of_way.waiter(get_settings().right_of_way_s, "upload")  # verification calls first
            while batch := list(islice(items, BATCH_ROWS)):
                give_way()
                if seq + len(batch) > MAX_RECIPIENTS_PER_JOB:
                    raise InvalidInput("recipients", f"at most {MAX_RECIPIENTS_PER_JOB} per job")
                people = [recipient_from(seq + i, item) for i, item in enumerate(batch)]
                try:  # the provider's checks count from the batch's start
                    people, repeats = drop_repeats(job.provider.normalise(job.spec, people))
                    job.provider.validate(job.spec, people)
                except InvalidInput as exc:
                    raise exc if not exc.field.startswith("recipients[") or seq == 0 else _at(exc, seq) from None
                if seq == 0:
                    precheck(job)  # asks the provider or the database: once the first batch is known good
                _check_custom_ids(session, people)
                suppressed += insert_recipients(session, row, job, people, start=seq, now=now, lookup=lookup)
                seq, inserted, removed = seq + len(batch), inserted + len(people), removed + repeats
            if seq == 0:
                raise InvalidInput("recipients", "at least one recipient is required")
            across = _drop_repeats_in_database(session, row.id, row.uid)
            if job.provider.unique_mobiles:
                _refuse_a_mobile_listed_twice(session, row.id)
            row.total, removed = inserted - across, removed + across
            if suppressed:  # a repeat dropped across batches may have been one of them
                row.suppressed = session.scalar(select(func.count()).select_from(Message).where(
                    Message.job_id == row.id, Message.provider_state == HeldBack.SUPPRESSED.value))
            hold = hold_at_submit(row, job, now)
            chunk_ids = add_chunks(session, row, seqs=seq, batch=job.max_batch(), now=now,
                                   due=hold and hold.until)
    except IntegrityError:
        if idempotency_key:
            with session_scope() as session:
                if old := _by_key(session, idempotency_key):
                    return Submitted(old.id, old.total, old.chunks, created=False)
        raise InvalidInput("recipients", "a custom_id is used twice in this job or by another message") from None
    if row.status == JobStatus.RUNNING and row.waiting_until is None:
        publish(job, row.id, chunk_ids, row.total, enqueue)
    return Submitted(row.id, row.total, row.chunks, created=True, duplicates_removed=removed)


def _drop_repeats_in_database(session: Any, job_id: int, uid: str) -> int:
    """Delete exact repeats (same mobile and content, custom id of ours) across the whole job, keeping the
    first; returns how many went. Their seqs stay as gaps: a chunk may hold fewer than its batch."""
    ours = f"{uid}-%"
    return session.execute(text(
        "DELETE FROM message WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER ("
        "PARTITION BY mobile, content ORDER BY seq) AS n FROM message WHERE job_id = :job AND custom_id LIKE :ours"
        ") AS ranked WHERE n > 1)"), {"job": job_id, "ours": ours}).rowcount


def _refuse_a_mobile_listed_twice(session: Any, job_id: int) -> None:
    """Refuse the job when one mobile is listed twice (reports tell recipients apart by mobile alone)."""
    twice = session.execute(select(Message.mobile, func.max(Message.seq)).where(Message.job_id == job_id)
                            .group_by(Message.mobile).having(func.count() > 1).limit(1)).first()
    if twice is not None:
        raise InvalidInput(f"recipients[{twice[1]}].mobile", f"{twice[0]} is listed twice in this job: the "
                                                             "provider's reports tell recipients apart by mobile")


def read_recipients(lines: Iterable[bytes], *, ndjson: bool) -> Iterator[Any]:
    """Recipients from an uploaded file, one per line, lazily: CSV `mobile[,content[,custom_id]]` (an optional
    first line `mobile,content,custom_id` names the columns), or NDJSON (each line a mobile string or an object
    {mobile, content?, custom_id?}). Blank lines are skipped; InvalidInput names the recipient that is unreadable."""
    rows = (line for line in lines if line.strip())
    i = 0
    columns = ("mobile", "content", "custom_id")
    for n, line in enumerate(rows):
        try:
            text_line = line.decode("utf-8-sig" if n == 0 else "utf-8").strip("\r\n")
        except UnicodeDecodeError:
            raise InvalidInput(f"recipients[{i}]", "is not UTF-8 text") from None
        if ndjson:
            try:
                yield json.loads(text_line)
            except ValueError:
                raise InvalidInput(f"recipients[{i}]", "is not a JSON string or object") from None
        else:
            cells = next(csv.reader([text_line]))
            if n == 0 and cells and cells[0].strip().lower() == "mobile":
                columns = tuple(c.strip().lower() for c in cells)
                continue
            if len(cells) > len(columns):
                raise InvalidInput(f"recipients[{i}]", f"has {len(cells)} columns; at most {', '.join(columns)}")
            yield cells[0] if len(cells) == 1 else {k: v for k, v in zip(columns, cells) if v != ""}
        i += 1
