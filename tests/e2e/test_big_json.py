"""POST /v1/jobs with a body over a megabyte: read as a stream (api/job_body.py), with the same answers and
errors as a small body, nothing written when anything is refused, and every recipient sent once."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from api.job_body import STREAM_ABOVE_BYTES
from tests.e2e.conftest import mobiles, wait_done

pytestmark = pytest.mark.e2e
JOB = {"account": "voice", "kind": "notify", "content": "您的快递已到"}
N = 12_000  # over one batch (10,000), so the recipients come in two


def big(body: dict, *, raw_tail: str = "") -> bytes:
    """`body` as JSON padded with whitespace past the streaming threshold (whitespace is valid JSON)."""
    text = json.dumps(body)  # ASCII: a lone surrogate stays an escape
    pad = " " * (STREAM_ABOVE_BYTES + 1 - len(text.encode()))
    return (text[:-1] + pad + raw_tail + "}").encode()


def jobs_count(api) -> int:
    return len(api.get("/v1/jobs", params={"limit": 1000}).json())


def test_a_big_body_is_one_job_sent_once_to_everyone(api, sim):
    # given 12,000 recipients, one listed twice, in a body over the threshold
    people = mobiles("183", N)
    body = big({**JOB, "recipients": [*people, people[5]]})
    assert len(body) > STREAM_ABOVE_BYTES
    # when
    answer = api.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    # then
    assert answer.status_code == 202, answer.text[:500]
    made = answer.json()
    assert (made["recipients"], made["duplicates_removed"], made["chunks"]) == (N, 1, 25)
    wait_done(made["id"], timeout_s=180)
    sent = Counter(r["mobile"] for req in sim.get("requests") for r in req["recipients"] if r["mobile"] in people)
    assert set(sent) == set(people) and set(sent.values()) == {1}


BAD = [  # (what is wrong, the body's recipients and extra fields, the field the 422 names)
    ("a number for a recipient in the second batch", {"recipients": [*mobiles("184", N - 1), 13800000000]},
     f"recipients[{N - 1}]"),
    ("an object with an unknown field", {"recipients": [*mobiles("185", 10_500), {"mobile": "13800000000",
                                                                                  "colour": "red"}]},
     "recipients[10500].colour"),
    ("a lone surrogate in a per-recipient custom id", {"recipients": [*mobiles("186", 10_200),
                                                                      {"mobile": "13800000001",
                                                                       "custom_id": "x\ud800"}]},
     "recipients[10200].custom_id"),
    ("a number the provider refuses", {"recipients": [*mobiles("187", 10_999), "12345"]},
     "recipients[10999].mobile"),
    ("an unknown top-level field", {"recipients": mobiles("188", N), "colour": "red"}, "colour"),
    ("an unknown kind", {"recipients": mobiles("189", N), "kind": "fax"}, "kind"),
]


@pytest.mark.parametrize(("what", "body", "field"), BAD, ids=[b[0] for b in BAD])
def test_a_big_body_refused_names_the_field_and_writes_nothing(api, what, body, field):
    before = jobs_count(api)
    answer = api.post("/v1/jobs", content=big({**JOB, **body}), headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text[:500]
    named = {d.get("field") or ".".join(map(str, d["loc"][1:])) for d in answer.json()["detail"]}
    assert field in named, (what, named)
    assert jobs_count(api) == before


def test_a_big_body_that_is_not_json_gets_the_small_body_answer(api):
    # given a body over the threshold cut short: the stream parser fails, the whole parse names the body
    body = big({**JOB, "recipients": mobiles("190", N)})[:-1]
    answer = api.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][0] == "body"


def test_recipients_given_twice_in_a_big_body_mean_what_they_mean_in_a_small_one(api):
    # given `recipients` twice: JSON parsers keep the last, so does the stream path (it parses such a body whole)
    first, last = mobiles("191", 3), mobiles("192", N)
    tail = ', "recipients": ' + json.dumps(last)
    answer = api.post("/v1/jobs", content=big({**JOB, "recipients": first}, raw_tail=tail),
                      headers={"content-type": "application/json"})
    assert answer.status_code == 202, answer.text[:500]
    assert answer.json()["recipients"] == N
