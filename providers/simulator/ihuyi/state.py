"""The simulated ihuyi MMS's credentials (IhuyiApp) and own state: remembered answers, the request log,
templates, push targets, counters.

The state lives beside the shared SimState and is forgotten whenever that is reset (see `IhuyiSim.fresh`).
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from providers.simulator.base import DEFAULT_BALANCE, account_field, account_secret
from providers.simulator.config import SimConfig
from providers.simulator.state import SimState

NAME = "ihuyi"
DEDUP_S = 7200.0  # a write whose request_id this api_id used in the last 2 hours gets the first answer
AUDIT_MESSAGES = {"SUCCESS": "审核通过", "FAIL": "模板内容不符合规范"}  # an audit's words when none are given


@dataclass
class IhuyiApp:
    """One simulated ihuyi MMS api_id: its key, its products (id -> name) and its balance."""

    api_key: str = field(repr=False)
    products: dict[int, str] = field(default_factory=lambda: {1001: "彩信通知"})
    balance: Decimal = DEFAULT_BALANCE

    def __post_init__(self) -> None:
        self.balance = Decimal(str(self.balance))


def ihuyi_apps(config: SimConfig) -> dict[str, IhuyiApp]:
    """The configured ihuyi api_ids."""
    return config.credentials_of(NAME)


def add_account(apps: dict[str, IhuyiApp], provider: str, account: Any) -> None:
    """Add one ihuyi_mms account to `apps`: accounts sharing an api_id add their product to it."""
    product = int(account_field(account, "product_id"))
    app = apps.setdefault(str(account_field(account, "api_id")), IhuyiApp(api_key=account_secret(account, "api_key")))
    app.products.setdefault(product, f"产品{product}")


@dataclass
class SimTemplate:
    """A template and its audit: in force from `due` (time.monotonic()), pushed once."""

    api_id: str
    title: str
    code: str
    message: str
    due: float
    pushed: bool = False

    def status(self) -> str:
        """pending until the audit is due, then approved or rejected."""
        return "pending" if time.monotonic() < self.due else "approved" if self.code == "SUCCESS" else "rejected"


class PushIn(BaseModel):
    """Where one api_id's pushes go, and how."""

    api_id: str
    receipt_url: str | None = None
    mo_url: str | None = None
    template_url: str | None = None
    mo_rate: float = Field(0.02, ge=0, le=1)
    repeat: int = Field(1, ge=1, le=5)
    retry_s: float = Field(0.2, ge=0, le=60)  # ihuyi waits 60 s, then 120 s more ("每次间隔叠加60秒")


class IhuyiSim:
    """ihuyi-only state (dedup answers, templates, push configuration, counters), guarded by `lock`."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.lock = threading.Lock()
        self.template_ids = itertools.count(100_000 + int(time.time()) % 100_000 * 10)  # unique across resets
        self.generation = -1
        self.fresh()

    def fresh(self) -> None:
        """Forget everything when the shared state was reset since we last looked."""
        if self.generation == self.state.generation:
            return
        self.generation = self.state.generation
        self.answers: dict[tuple[str, str], tuple[dict, float]] = {}
        self.log: list[dict] = []
        self.templates: dict[int, SimTemplate] = {}
        self.push: dict[str, PushIn] = {}
        self.products: dict[str, dict[int, str]] = {}
        self.max_bytes = 300 * 1024
        self.stats: Counter[str] = Counter()

    def count(self, key: str) -> None:
        """Bump a push counter."""
        with self.lock:
            self.stats[key] += 1

    def products_of(self, api_id: str) -> dict[int, str]:
        """The api_id's products: configured ones and those added by a control route."""
        return {**ihuyi_apps(self.state.config)[api_id].products, **self.products.get(api_id, {})}

    def remembered(self, key: tuple[str, str]) -> dict | None:
        """The first answer to this api_id's request_id within 2 hours (call with the lock held)."""
        hit = self.answers.get(key)
        if hit is None or hit[1] < time.monotonic():
            return None
        self.stats["duplicates_answered"] += 1
        return hit[0]

    def remember(self, key: tuple[str, str], answer: dict) -> None:
        """Keep the answer to this api_id's request_id for 2 hours (call with the lock held)."""
        self.answers[key] = (answer, time.monotonic() + DEDUP_S)

    def log_send(self, body: dict, answer: dict, *, duplicate: bool) -> None:
        """Log one batchSend for GET /_sim/ihuyi/requests (call with the lock held)."""
        self.log.append({key: body.get(key) for key in ("api_id", "request_id", "timestamp", "signature")}
                        | {"task_id": answer.get("task_id"), "phones": len(body.get("phone") or []),
                           "duplicate": duplicate, "at": time.time()})
