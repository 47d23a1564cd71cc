"""submit_stream: a job read from a stream in batches, with submit_job's guarantees and nothing half-written."""
from __future__ import annotations

import tracemalloc
from collections import Counter

import pytest

from models import Chunk, Job, Message
from models.statuses import MessageStatus
from msgrelay import upload
from msgrelay.upload import submit_stream
from providers.errors import InvalidInput
from tests.core.conftest import mobiles, rows


def stream(accounts, account: str, kind: str, items, **kw):
    published: list = []

    def enqueue(chunks, *, call: str | None = None) -> None:
        published.extend(chunks)
    done = submit_stream(accounts=accounts, account=account, kind=kind, recipients=items, enqueue=enqueue, **kw)
    return done, published


def test_a_stream_is_written_in_batches_with_repeats_dropped(accounts, monkeypatch):
    monkeypatch.setattr(upload, "BATCH_ROWS", 100)  # several batches from a small job
    people = mobiles(950)
    items = iter(people + people[:30] + [{"mobile": people[0], "custom_id": "given-upload-1"}])
    done, published = stream(accounts, "voice", "notify", items, content="您好")
    assert (done.recipients, done.duplicates_removed) == (951, 30)
    messages = rows(Message, job_id=done.id)
    assert len(messages) == 951 and Counter(m.status for m in messages) == {MessageStatus.QUEUED: 951}
    chunks = rows(Chunk, job_id=done.id)
    assert [(c.lo, c.hi) for c in chunks] == [(0, 500), (500, 981)] and len(published) == 2
    assert rows(Job, id=done.id)[0].total == 951


@pytest.mark.parametrize(("bad_at", "item", "field"), [
    (250, "12345", "recipients[250].mobile"),
    (120, {"mobile": "13800000000", "colour": "red"}, "recipients[120].colour"),
])
def test_a_refusal_deep_in_the_stream_names_its_line_and_writes_nothing(accounts, monkeypatch, bad_at, item, field):
    monkeypatch.setattr(upload, "BATCH_ROWS", 100)
    people: list = mobiles(300)
    people[bad_at] = item
    before = len(rows(Job))
    with pytest.raises(InvalidInput) as refused:
        stream(accounts, "voice", "notify", iter(people), content="您好")
    assert refused.value.field == field
    assert len(rows(Job)) == before


def test_a_mobile_listed_twice_across_batches_is_refused_where_reports_need_it(accounts, monkeypatch):
    monkeypatch.setattr(upload, "BATCH_ROWS", 100)
    people = mobiles(150)
    items = [{"mobile": m, "custom_id": f"sms-twice-{m}"} for m in people] + [{"mobile": people[3], "custom_id": "x2"}]
    before = len(rows(Job))
    with pytest.raises(InvalidInput) as refused:
        stream(accounts, "sms", "sms", iter(items), content="您好")
    assert refused.value.field == "recipients[150].mobile" and len(rows(Job)) == before


def test_memory_stays_flat_in_the_stream_length(accounts):
    def peak(n: int) -> int:
        tracemalloc.start()
        stream(accounts, "voice", "notify", (str(13_900_000_000 + i) for i in range(n)), content="您好")
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(10_000), peak(40_000)
    assert large < small * 1.5, (small, large)  # four times the rows, about the same peak
