"""Fast tests of the flow's plain functions against the real database (SQLite or PostgreSQL), the real Redis
(db 15) and the simulator served in this process: no Celery worker. These run before tests/e2e (whose
session-wide worker and beat would otherwise sweep these tests' rows)."""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from msgrelay.accounts import parse_accounts
from msgrelay.settings import Settings
from providers.simulator import config_from_accounts
from tests.simulator.conftest import serving



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here talks to the database: mark it `db`, so the PostgreSQL pass (`-m "e2e or db"`) runs it
    (a `pytestmark` in a conftest marks nothing)."""
    for item in items:
        if "tests/core/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.db)


_names = itertools.count()

ACCOUNTS = """
[accounts.voice]
provider = "emay_voice"
base_url = "{url}"
app_id = "EUCP-CORE-VOICE"
secret_key = "0123456789abcdef"

[accounts.voice_b]
provider = "emay_voice"
base_url = "{url}"
app_id = "EUCP-CORE-VOICEB"
secret_key = "abcdef0123456789"

[accounts.ims]
provider = "emay_ims"
base_url = "{url}"
app_id = "EUCP-CORE-IMS"
secret_key = "0123456789abcdef"

[accounts.sms]
provider = "qyxs_sms"
base_url = "{url}"
userid = "77"
account = "core"
password = "core-pass"

[accounts.mms]
provider = "ihuyi_mms"
base_url = "{url}"
api_id = "CORE-MMS"
api_key = "core-mms-key"
product_id = 1001
"""


class Sim:
    """The in-process simulator: its URL and control routes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def control(self, method: str, path: str, **kw: Any) -> Any:
        answer = self.http.request(method, self.url + path, **kw)
        answer.raise_for_status()
        return answer.json()

    def faults(self, **faults: Any) -> None:
        self.control("POST", "/_sim/faults", json=faults)

    def accepted(self, endpoint: str | None = None) -> list[dict]:
        """Every send request the simulator accepted (optionally at one endpoint)."""
        return self.control("GET", "/_sim/requests", params={"endpoint": endpoint} if endpoint else {})


@pytest.fixture(scope="session")
def core_sim(database: str) -> Iterator[tuple[Sim, dict]]:
    """The simulator serving the core accounts, and those accounts parsed with its URL."""
    config = config_from_accounts(parse_accounts(ACCOUNTS.format(url="http://127.0.0.1:9")), report_delay_s=0.2)
    with serving(config) as url:
        yield Sim(url), parse_accounts(ACCOUNTS.format(url=url))


@pytest.fixture
def sim(core_sim) -> Sim:
    """The simulator, reset: no records, reports or faults."""
    sim, _ = core_sim
    sim.control("POST", "/_sim/reset")
    return sim


@pytest.fixture
def accounts(core_sim) -> dict:
    """The parsed core accounts, pointing at the simulator."""
    return core_sim[1]


@pytest.fixture
def settings() -> Settings:
    """The test settings (tests/conftest.py sets the environment)."""
    return Settings()


def mobiles(n: int) -> list[str]:
    """`n` mainland mobiles no other core test uses."""
    base = 13_000_000_000 + next(_names) * 100_000
    return [str(base + i) for i in range(n)]


def submit(accounts: dict, account: str, kind: str, recipients: list, **kw: Any):
    """submit_job without a broker: returns (Submitted, [(chunk id, queue), …] it would have published)."""
    from msgrelay.submit import submit_job

    published: list[tuple[int, str]] = []

    def enqueue(chunks, *, call: str | None = None) -> None:
        published.extend(chunks)
    done = submit_job(accounts=accounts, account=account, kind=kind, recipients=recipients, enqueue=enqueue, **kw)
    return done, published


def rows(model: Any, **where: Any) -> list:
    """Rows of a table matching `where` (column == value)."""
    from sqlalchemy import select

    from models import session_scope

    with session_scope() as session:
        query = select(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return list(session.scalars(query.order_by(model.id)))


def execute(statement: Any) -> None:
    """Run one statement in its own transaction (to put rows in the state a test needs)."""
    from models import session_scope

    with session_scope() as session:
        session.execute(statement)
