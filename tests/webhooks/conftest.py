"""Webhook tests: a real HTTP receiver in this process (examples/webhook_receiver.py) and the e2e stack's real
worker, Redis, database and simulator. Retry delays, the horizon and the stale-sending limit are shortened here,
before the stack's worker is started, so it reads them too."""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# must be set before any fixture starts the worker (its environment is a copy of this process's)
os.environ.update({
    "MSGRELAY_WEBHOOK_SECRET": "whsec-test-current,whsec-test-previous",
    "MSGRELAY_WEBHOOK_TIMEOUT_S": "1",
    "MSGRELAY_WEBHOOK_RETRY_BASE_S": "0.4",
    "MSGRELAY_WEBHOOK_RETRY_MAX_S": "3.2",
    "MSGRELAY_WEBHOOK_RETRY_HORIZON_S": "20",
    "MSGRELAY_WEBHOOK_STALE_SENDING_S": "4",
    "MSGRELAY_WEBHOOK_DRAIN_S": "1",
    "MSGRELAY_WEBHOOK_DISPATCH_EVERY_S": "0.5",
})
os.environ.pop("MSGRELAY_WEBHOOK_URL", None)

from msgrelay.settings import reload_settings  # noqa: E402

reload_settings()  # in case a module collected earlier read the settings already

from examples.webhook_receiver import Receiver  # noqa: E402
from tests.e2e.conftest import api, sim, stack, worker  # noqa: E402,F401  (the session's one stack)

SECRETS = ["whsec-test-current", "whsec-test-previous"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver that verifies with the test secret, answering 204, on a free port."""
    r = Receiver(SECRETS).start()
    yield r
    r.stop()
