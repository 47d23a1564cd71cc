"""Routes against the database and the simulator, no worker: a chunk moves to the next account only when its
account could not have accepted it; an ambiguous chunk never moves; a weighted route splits by weight."""
from __future__ import annotations

from collections import Counter

import pytest

from models import Chunk, Job, Message, session_scope
from models.statuses import ChunkStatus, JobStatus, MessageStatus
from msgrelay.accounts import Accounts, parse_accounts
from msgrelay.routes import health
from msgrelay.routes.config import Route
from msgrelay.routes.pick import pick
from msgrelay.send import send_chunk
from providers.errors import ConfigError, InvalidInput
from tests.core.conftest import mobiles, rows, submit

A, B = "voice", "voice_b"
APP = {A: "EUCP-CORE-VOICE", B: "EUCP-CORE-VOICEB"}


@pytest.fixture
def routed(accounts, sim):
    """The core accounts (ten recipients a chunk) with a failover route and a 3:1 route over voice and voice_b;
    no account paused before or after."""
    small = {name: acct.model_copy(update={"max_batch": 10}) for name, acct in accounts.items()}
    with session_scope() as session:
        health.clear(session, [A, B])
    yield Accounts(small, {"pair": Route("pair", (A, B)), "split": Route("split", (A, B), "weighted", (3, 1))})
    with session_scope() as session:
        health.clear(session, [A, B])


def drain(accounts, published, settings, limit: int = 200) -> list[str]:
    """Run the published chunks, and again each one that asks to be retried at once (a failover)."""
    todo, details = [cid for cid, _ in published], []
    while todo and limit:
        cid, limit = todo.pop(0), limit - 1
        outcome = send_chunk(cid, settings=settings, accounts=accounts)
        details.append(outcome.detail)
        if outcome.action == "retry":
            todo.append(cid)
    return details


def accepted_by(sim) -> dict[str, Counter]:
    """Mobiles each credential's sends were accepted for."""
    out: dict[str, Counter] = {A: Counter(), B: Counter()}
    by_app = {app: name for name, app in APP.items()}
    for req in sim.accepted("/voice/send"):
        out[by_app[req["app_id"]]].update(r["mobile"] for r in req["recipients"])
    return out


def test_balance_running_out_moves_the_rest_to_the_next_account_and_each_message_names_its_account(
        sim, routed, settings):
    sim.control("POST", "/_sim/balance", json={"app_id": APP[A], "balance": 20})  # two chunks of ten
    people = mobiles(50)
    done, published = submit(routed, None, "notify", people, content="您好", route="pair")
    details = drain(routed, published, settings)
    # then: two chunks through voice, the rest through voice_b; everyone accepted exactly once
    got = accepted_by(sim)
    assert sum(got[A].values()) == 20 and sum(got[B].values()) == 30
    assert (got[A] + got[B]) == Counter(people)
    assert any(d.startswith("failover: voice balance") for d in details)
    accounts_of = {m.mobile: m.account for m in rows(Message, job_id=done.id)}
    assert all(accounts_of[m] == A for m in got[A]) and all(accounts_of[m] == B for m in got[B])
    assert {m.status for m in rows(Message, job_id=done.id)} == {MessageStatus.SUBMITTED}
    with session_scope() as session:
        assert list(health.paused(session, [A, B])) == [A]


def test_rotated_credentials_mid_job_move_the_rest_and_the_account_is_paused_for_it(sim, routed, settings):
    people = mobiles(40)
    done, published = submit(routed, None, "notify", people, content="您好", route="pair")
    drain(routed, published[:2], settings)
    sim.control("POST", "/_sim/secret", json={"app_id": APP[A], "secret_key": "f" * 16})
    drain(routed, published[2:], settings)
    got = accepted_by(sim)
    assert sum(got[A].values()) == 20 and sum(got[B].values()) == 20 and (got[A] + got[B]) == Counter(people)
    with session_scope() as session:
        assert health.paused(session, [A])[A].startswith("credentials:")


def test_an_ambiguous_chunk_stays_on_its_account(sim, routed, settings):
    sim.faults(stall_after_accept_rate=1.0, stall_s=settings.http_read_timeout_s + 2)
    people = mobiles(10)
    done, published = submit(routed, None, "notify", people, content="您好", route="pair")
    drain(routed, published, settings)
    sim.faults()
    # then: the chunk is unknown on voice (the provider has it), and voice_b never saw any of it
    (chunk,) = rows(Chunk, job_id=done.id)
    assert (chunk.status, chunk.account) == (ChunkStatus.UNKNOWN, A)
    got = accepted_by(sim)
    assert got[A] == Counter(people) and not got[B]
    assert {(m.status, m.account) for m in rows(Message, job_id=done.id)} == {(MessageStatus.UNKNOWN, A)}


def test_a_weighted_route_splits_three_to_one_and_a_paused_account_gives_its_share_away(sim, routed, settings):
    done, published = submit(routed, None, "notify", mobiles(400), content="您好", route="split")
    drain(routed, published, settings)
    assert Counter(c.account for c in rows(Chunk, job_id=done.id)) == {A: 30, B: 10}
    # when: voice is paused, every chunk goes through voice_b; resumed, the split returns
    with session_scope() as session:
        health.pause(session, A, "balance: ERROR_NEEDMORE_BALANCE")
    alone, published = submit(routed, None, "notify", mobiles(80), content="您好", route="split")
    drain(routed, published, settings)
    assert Counter(c.account for c in rows(Chunk, job_id=alone.id)) == {B: 8}
    with session_scope() as session:
        health.clear(session, [A])
    again, published = submit(routed, None, "notify", mobiles(80), content="您好", route="split")
    drain(routed, published, settings)
    assert Counter(c.account for c in rows(Chunk, job_id=again.id)) == {A: 6, B: 2}


def test_every_account_paused_pauses_the_job_naming_the_route(sim, routed, settings):
    with session_scope() as session:
        health.pause(session, A, "balance: ERROR_NEEDMORE_BALANCE")
        health.pause(session, B, "credentials: ERROR_SIGN")
    done, published = submit(routed, None, "notify", mobiles(10), content="您好", route="pair")
    drain(routed, published, settings)
    (job,) = rows(Job, id=done.id)
    assert job.status == JobStatus.PAUSED and job.reason.startswith("balance: every account of route 'pair'")
    assert not sim.accepted()


@pytest.mark.parametrize(("route", "weights", "assigned", "paused", "expected"), [
    (("a", "b"), (), {}, set(), "a"),
    (("a", "b"), (), {}, {"a"}, "b"),
    (("a", "b"), (), {}, {"a", "b"}, None),
    (("a", "b"), (3, 1), {"a": 3}, set(), "b"),
    (("a", "b"), (3, 1), {"a": 2}, set(), "a"),
    (("a", "b"), (3, 1), {"a": 3, "b": 1}, set(), "a"),
    (("a", "b", "c"), (1, 1, 2), {"a": 1, "b": 1, "c": 1}, set(), "c"),
    (("a", "b"), (3, 1), {"a": 30}, {"b"}, "a"),
])
def test_pick(route, weights, assigned, paused, expected):
    the_route = Route("r", route, "weighted" if weights else "failover", weights)
    assert pick(the_route, paused, assigned) == expected


@pytest.mark.parametrize(("kwargs", "field", "words"), [
    ({"route": "nowhere"}, "route", "unknown route"),
    ({"route": "pair", "account": A}, "route", "exactly one"),
    ({}, "account", "exactly one"),
])
def test_a_bad_route_on_a_job_names_the_field(routed, kwargs, field, words):
    with pytest.raises(InvalidInput) as caught:
        submit(routed, kwargs.pop("account", None), "notify", mobiles(1), content="您好", **kwargs)
    assert caught.value.field == field and words in caught.value.rule


ROUTE_HEAD = """
[accounts.v1]
provider = "emay_voice"
base_url = "http://127.0.0.1:9"
app_id = "A1"
secret_key = "0123456789abcdef"

[accounts.v2]
provider = "emay_voice"
base_url = "http://127.0.0.1:9"
app_id = "A2"
secret_key = "0123456789abcdef"

[accounts.s1]
provider = "qyxs_sms"
base_url = "http://127.0.0.1:9"
userid = "1"
account = "a"
password = "p"
"""


@pytest.mark.parametrize(("table", "words"), [
    ('accounts = ["v1", "s1"]', "account 's1' (qyxs_sms) cannot send what account 'v1'"),
    ('accounts = ["v1", "nobody"]', "field 'accounts': no account 'nobody'"),
    ('accounts = []', "field 'accounts': must be a non-empty list"),
    ('accounts = ["v1", "v1"]', "listed twice"),
    ('accounts = ["v1", "v2"]\nmode = "random"', "field 'mode'"),
    ('accounts = ["v1", "v2"]\nmode = "weighted"', "field 'weights'"),
    ('accounts = ["v1", "v2"]\nmode = "weighted"\nweights = [3, 0]', "field 'weights'"),
    ('accounts = ["v1", "v2"]\nweights = [3, 1]', "only a weighted route has weights"),
    ('accounts = ["v1", "v2"]\nspread = true', "field 'spread'"),
])
def test_a_bad_route_is_refused_at_start_up_naming_the_route(table, words):
    with pytest.raises(ConfigError) as caught:
        parse_accounts(ROUTE_HEAD + f"\n[routes.nightly]\n{table}\n", source="f.toml")
    assert str(caught.value).startswith("f.toml: route 'nightly'") and words in str(caught.value)


def test_a_route_whose_accounts_cannot_send_the_kind_is_refused_at_submit(routed):
    with pytest.raises(InvalidInput) as caught:
        submit(routed, None, "voice_sms", mobiles(1), content="您好", route="pair")
    assert caught.value.field in ("route", "kind")


def test_a_chunk_the_provider_may_have_never_moves_even_when_its_account_then_fails(sim, accounts, settings):
    # given: an MMS route whose first try stalls after the provider accepted it (ambiguous: ihuyi keeps the
    # request id, so the chunk is tried again with it), and the account's key rotated before that retry
    mms = accounts["mms"]
    routed = Accounts({**accounts, "mms2": mms.model_copy(update={"name": "mms2"})},
                      {"mms_pair": Route("mms_pair", ("mms", "mms2"))})
    with session_scope() as session:
        health.clear(session, ["mms", "mms2"])
    sim.faults(stall_after_accept_rate=1.0, stall_s=settings.http_read_timeout_s + 2)
    done, published = submit(routed, None, "mms", mobiles(3), content="会员日", route="mms_pair",
                              options={"title": "t", "sign_name": "【互亿无线】"})
    (chunk_id, _), = published
    assert send_chunk(chunk_id, settings=settings, accounts=routed).action == "retry"
    sim.faults()
    sim.control("POST", "/_sim/secret", json={"app_id": mms.api_id, "secret_key": "rotated-key-0000"})
    # when: the retry is refused for its credentials
    send_chunk(chunk_id, settings=settings, accounts=routed)
    # then: the chunk stays on its account with its request id (the job pauses); it never goes through mms2
    (chunk,) = rows(Chunk, job_id=done.id)
    assert (chunk.account, chunk.status) == ("mms", ChunkStatus.PENDING) and chunk.request_id
    assert rows(Job, id=done.id)[0].status == JobStatus.PAUSED
    with session_scope() as session:
        health.clear(session, ["mms", "mms2"])
