"""An inbound poll when Redis dies while the provider hands out replies: 企业信使 hands each reply out once, so the
answer is kept on this machine's disk and stored by the next poll (before, it was lost with Redis alone)."""
from __future__ import annotations

import threading

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from models import InboundMessage, session_scope
from msgrelay.cli.processes import Supervisor, start_embedded_redis
from msgrelay.inbound import poll_inbound
from msgrelay.settings import reload_settings
from msgrelay.spool import KeptOnDisk
from tests.core.conftest import mobiles

QYXS_USERID = "77"  # the core `sms` account's


def stored(mobile: str) -> list[str]:
    """The contents stored for replies from `mobile`."""
    with session_scope() as session:
        return list(session.scalars(select(InboundMessage.content).where(InboundMessage.mobile == mobile)))


def on_disk() -> float:
    """msgrelay_spool_kept_on_disk_total{purpose="inbound"} as this process counts it."""
    return REGISTRY.get_sample_value("msgrelay_spool_kept_on_disk_total", {"purpose": "inbound"}) or 0.0


def test_a_reply_fetched_as_redis_dies_is_kept_on_disk_and_stored_by_the_next_poll(accounts, sim, settings,
                                                                                   monkeypatch, tmp_path):
    # given: a reply waiting at the provider, a Redis of this test's own, and a query that takes a second to answer
    mobile = mobiles(1)[0]
    sim.control("POST", "/_sim/reply", json={"app_id": QYXS_USERID, "mobile": mobile, "content": "收到，谢谢"})
    sim.faults(latency_s=1.0)
    spool = tmp_path / "spool"
    monkeypatch.setenv("MSGRELAY_SPOOL_DIR", str(spool))
    counted = on_disk()
    with Supervisor(tmp_path / "logs") as sup:
        try:
            monkeypatch.setenv("MSGRELAY_REDIS_URL", start_embedded_redis(sup, tmp_path))
            reload_settings()

            def kill_redis() -> None:
                server = sup.children.pop("redis")
                server.kill()
                server.wait()

            # when: Redis dies while the query is on its way (after the poll took its lock and drained the spool)
            killer = threading.Timer(0.5, kill_redis)
            killer.start()
            with pytest.raises(KeptOnDisk):
                poll_inbound(accounts["sms"], settings)
            killer.join()
            # then: the reply the provider handed out is on disk, not yet stored, and counted for the alert
            [kept] = list(spool.rglob("*.json"))
            assert on_disk() == counted + 1
            assert mobile in kept.read_text() and stored(mobile) == []
            # when: Redis is back and the next poll runs
            sim.faults(latency_s=0.0)
            monkeypatch.setenv("MSGRELAY_REDIS_URL", start_embedded_redis(sup, tmp_path))
            reload_settings()
            poll_inbound(accounts["sms"], settings)
        finally:
            monkeypatch.undo()
            reload_settings()
    # then: the reply is stored once, and its file is gone
    assert stored(mobile) == ["收到，谢谢"]
    assert not list(spool.rglob("*.json"))
