"""The sending policy from the CLI (DESIGN §9): `msgrelay suppress add|remove|list`, `send --valid-until|--send-at`."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.conftest import job_view

pytestmark = pytest.mark.e2e
SHANGHAI = timezone(timedelta(hours=8))
ENV = {**os.environ, "COLUMNS": "200"}


def msgrelay(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "msgrelay.cli", *args], check=False, env=ENV, capture_output=True,
                          text=True, timeout=120)


def msgrelay_each(*argvs: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
    """Run independent commands side by side (each costs about a second of start-up); results in order."""
    procs = [subprocess.Popen([sys.executable, "-m", "msgrelay.cli", *argv], env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for argv in argvs]
    outs = []
    for argv, proc in zip(argvs, procs):
        stdout, stderr = proc.communicate(timeout=120)
        outs.append(subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr))
    return outs


def row_of(table: str, mobile: str) -> list[str]:
    """The cells of the one row of a printed table that holds `mobile`."""
    found = [ln for ln in table.splitlines() if mobile in ln]
    assert len(found) == 1, table
    return [cell.strip() for cell in found[0].strip(" │").split("│")]


def job_id_of(out: subprocess.CompletedProcess) -> int:
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split("job ")[1].split(":")[0])


def jobs_keyed(*keys: str) -> int:
    from sqlalchemy import func, select

    from models import Job, session_scope
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Job).where(Job.idempotency_key.in_(keys)))


@pytest.fixture
def listed_mobiles(stack) -> Iterator[list[str]]:
    """Two mobiles no other test sends to; whatever the test leaves suppressed for them is lifted after it."""
    from sqlalchemy import delete

    from models import session_scope
    from models.policy import Suppression
    mobiles = ["19912340001", "19912340002"]
    yield mobiles
    with session_scope() as session:
        session.execute(delete(Suppression).where(Suppression.mobile.in_(mobiles)))


def test_suppress_add_list_remove(listed_mobiles):
    one, two = listed_mobiles
    # given one mobile (in another usual form) suppressed for the voice account, the other for every account
    first = msgrelay("suppress", "add", "+86 199-1234-0001", "--scope", "voice", "--reason", "complained")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"suppressed {one} for account voice"
    assert msgrelay("suppress", "add", two).returncode == 0
    # when the first is added again, a mobile that is none and an unknown scope are tried
    again, bad_mobile, bad_scope = msgrelay_each(
        ("suppress", "add", one, "--scope", "voice", "--reason", "another reason"),
        ("suppress", "add", "12ab"), ("suppress", "add", one, "--scope", "nosuch"))
    # then the first entry stays, and the bad ones are refused naming their field
    assert again.returncode == 0, again.stderr
    assert f"{one} was already suppressed for account voice since " in again.stdout
    assert "(complained)" in again.stdout
    assert bad_mobile.returncode == 2 and "mobile: '12ab' is not a phone number" in bad_mobile.stderr
    assert bad_scope.returncode == 2 and "scope: must be" in bad_scope.stderr and "voice" in bad_scope.stderr

    # when listed: all, then one scope
    every, voice = msgrelay_each(("suppress", "list"), ("suppress", "list", "--scope", "voice"))
    # then each shows its scope, reason and source
    assert every.returncode == 0 and voice.returncode == 0, every.stderr + voice.stderr
    assert row_of(every.stdout, one)[:4] == [one, "voice", "complained", "cli"]
    assert row_of(every.stdout, two)[:4] == [two, "*", "", "cli"]
    assert one in voice.stdout and two not in voice.stdout

    # when the first is lifted, then lifted again
    removed = msgrelay("suppress", "remove", one, "--scope", "voice")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == f"{one} is no longer suppressed for account voice"
    gone, left = msgrelay_each(("suppress", "remove", one, "--scope", "voice"), ("suppress", "list", "--mobile", one))
    # then the second time names the mobile, and it is listed no more
    assert gone.returncode == 2 and f"mobile: {one} is not suppressed in scope 'voice'" in gone.stderr
    assert left.returncode == 0 and one not in left.stdout


def test_send_refuses_a_bad_valid_until_and_writes_nothing(sim):
    # given times that are past, naive, no time at all, and not after --send-at
    now = datetime.now(SHANGHAI).replace(microsecond=0)
    send = ("send", "voice", "notify", "--to", "13900000001", "--content", "通知")
    # when
    past, naive, garbage, before = msgrelay_each(
        (*send, "--valid-until", (now - timedelta(minutes=1)).isoformat(), "--idempotency-key", "cli-vu-past"),
        (*send, "--valid-until", "2026-12-05T18:00:00", "--idempotency-key", "cli-vu-naive"),
        (*send, "--valid-until", "tomorrow", "--idempotency-key", "cli-vu-garbage"),
        (*send, "--send-at", (now + timedelta(hours=2)).isoformat(), "--valid-until",
         (now + timedelta(hours=1)).isoformat(), "--idempotency-key", "cli-vu-before"))
    # then each names what is wrong, and no job is written or sent
    assert past.returncode == 2 and "valid_until:" in past.stderr and "already passed" in past.stderr
    assert naive.returncode == 2 and "--valid-until: '2026-12-05T18:00:00' has no time zone" in naive.stderr
    assert garbage.returncode == 2 and "--valid-until: 'tomorrow' is not an ISO 8601 time" in garbage.stderr
    assert before.returncode == 2 and "valid_until: must be after send_at" in before.stderr
    assert jobs_keyed("cli-vu-past", "cli-vu-naive", "cli-vu-garbage", "cli-vu-before") == 0
    assert not [r for req in sim.get("requests") for r in req["recipients"] if r["mobile"].endswith("13900000001")]


def test_send_keeps_valid_until_and_send_at(sim):
    from models import Job, session_scope
    from msgrelay.jobs import cancel_job
    # given
    now = datetime.now(SHANGHAI).replace(microsecond=0)
    until, at = now + timedelta(hours=1), now + timedelta(minutes=30)
    send = ("send", "voice", "notify", "--content", "通知", "--valid-until", until.isoformat())
    # when one job is sent now and one at a later time
    sent_now, scheduled = msgrelay_each((*send, "--to", "13900000002"),
                                        (*send, "--to", "13900000003", "--send-at", at.isoformat()))
    # then both show their valid_until (in UTC), and the scheduled one waits for its time
    now_id, later_id = job_id_of(sent_now), job_id_of(scheduled)
    assert datetime.fromisoformat(job_view(now_id)["valid_until"]) == until
    view = job_view(later_id)
    assert datetime.fromisoformat(view["valid_until"]) == until and view["status"] == "queued"
    with session_scope() as session:
        assert session.get(Job, later_id).send_at == at
        cancel_job(session, later_id)  # nothing of it is left for later tests' workers to send
