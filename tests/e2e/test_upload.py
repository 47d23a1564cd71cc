"""POST /v1/jobs/upload end to end: a file of recipients streamed into a job, sent like any other."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.e2e.conftest import job_view, mobiles, wait_done

pytestmark = pytest.mark.e2e
JOB = {"account": "voice", "kind": "notify", "content": "您的快递已到"}


def test_a_csv_upload_is_one_job_sent_once_to_everyone(api, sim):
    # given: a CSV file with a header, 1,300 mobiles, one listed twice and a blank line
    people = mobiles("181", 1300)
    csv = "mobile\n" + "\n".join(people) + f"\n\n{people[7]}\n"
    # when
    answer = api.post("/v1/jobs/upload", data={"job": json.dumps(JOB)},
                      files={"recipients": ("people.csv", csv.encode(), "text/csv")})
    # then
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["recipients"], body["duplicates_removed"], body["chunks"]) == (1300, 1, 3)
    wait_done(body["id"])
    sent = Counter(r["mobile"] for req in sim.get("requests") for r in req["recipients"] if r["mobile"] in people)
    assert set(sent) == set(people) and set(sent.values()) == {1}


def test_an_ndjson_upload_carries_per_recipient_fields(api, sim):
    lines = [json.dumps({"mobile": m, "custom_id": f"nd-{m}"}) for m in mobiles("182", 3)]
    answer = api.post("/v1/jobs/upload", data={"job": json.dumps(JOB)},
                      files={"recipients": ("people.ndjson", "\n".join(lines).encode(), "application/x-ndjson")})
    assert answer.status_code == 202, answer.text
    assert job_view(answer.json()["id"])["total"] == 3


@pytest.mark.parametrize(("job", "csv", "field"), [
    (JOB, "13800000000\n12345\n", "recipients[1].mobile"),
    (JOB, "13800000000\n\xff\xfe\n", "recipients[1]"),
    ({**JOB, "kind": "fax"}, "13800000000\n", "kind"),
    ({**JOB, "colour": "red"}, "13800000000\n", "job.colour"),
    ({"kind": "notify"}, "13800000000\n", "job.account"),
])
def test_bad_uploads_are_refused_naming_the_field_and_nothing_is_written(api, job, csv, field):
    before = len(api.get("/v1/jobs", params={"limit": 1000}).json())
    data = csv.encode("latin-1") if "\xff" in csv else csv.encode()
    answer = api.post("/v1/jobs/upload", data={"job": json.dumps(job)},
                      files={"recipients": ("people.csv", data, "text/csv")})
    assert answer.status_code == 422, answer.text
    assert field in {d.get("field") or ".".join(map(str, d["loc"][1:])) for d in answer.json()["detail"]}
    assert len(api.get("/v1/jobs", params={"limit": 1000}).json()) == before
