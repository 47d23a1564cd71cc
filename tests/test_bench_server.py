"""The benchmarks run PostgreSQL with docker-compose.yml's `max_wal_size` and give the server its own back."""
from __future__ import annotations

import pytest
import yaml
from sqlalchemy import text

from benchmarks.harness import COMPOSE_MAX_WAL_SIZE, server_as_compose
from tests.conftest import PG_URL, TEST_DB
from tests.test_compose import ROOT


def shown() -> str:
    """The server's max_wal_size, as a new connection sees it."""
    from models import get_engine
    with get_engine(PG_URL).connect() as conn:
        return conn.execute(text("SHOW max_wal_size")).scalar()


def test_the_benchmarks_size_is_composes():
    postgres = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["postgres"]["command"]
    assert f"max_wal_size={COMPOSE_MAX_WAL_SIZE}" in postgres


@pytest.mark.skipif(TEST_DB != "postgresql", reason="a PostgreSQL server setting")
def test_the_run_has_composes_setting_and_the_server_its_own_after():
    # given the server's own setting
    own = shown()
    assert own != COMPOSE_MAX_WAL_SIZE, "the test needs a server not already at compose's setting"
    # when a benchmark runs, then the server has compose's setting during it and its own after, even on an error
    with pytest.raises(RuntimeError), server_as_compose(PG_URL):
        assert shown() == COMPOSE_MAX_WAL_SIZE
        raise RuntimeError("the run failed")
    assert shown() == own


@pytest.mark.skipif(TEST_DB != "postgresql", reason="a PostgreSQL server setting")
def test_a_user_who_may_not_configure_the_server_runs_it_as_it_is(capsys):
    # given a role that is no superuser
    from sqlalchemy.engine import make_url

    from models import get_engine
    with get_engine(PG_URL).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = 'msgrelay_bench_plain'")).scalar():
            conn.execute(text("CREATE ROLE msgrelay_bench_plain LOGIN"))
    plain = make_url(PG_URL).set(username="msgrelay_bench_plain").render_as_string(hide_password=False)
    own = shown()
    # when a benchmark runs as it, then the server keeps its setting, and the run says so
    with server_as_compose(plain):
        assert shown() == own
    assert "max_wal_size stays as it is" in capsys.readouterr().out
    assert shown() == own
