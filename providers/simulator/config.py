"""Simulator configuration: every vendor's credentials, the report delay, the timestamp window and the seed."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass
class SimConfig:
    """Everything the simulator needs: credentials per vendor, report delay, timestamp window, seed.

    ``credentials`` maps a vendor's name (``SimVendor.name``) to its credentials by id; every credential id
    (Emay appId, qyxs userid, ihuyi api_id, …) keys one balance in the shared state.
    """

    credentials: dict[str, dict[str, Any]] = field(default_factory=dict)
    report_delay_s: float = 0.5  # a report becomes available this long after acceptance
    timestamp_window_s: float = 60.0  # the documents: within 1 minute of Beijing time
    seed: int = 0  # salts the per-mobile outcome hash

    def credentials_of(self, vendor: str) -> dict[str, Any]:
        """One vendor's credentials by id; the dict is kept, so every route reading it sees one and the same."""
        return self.credentials.setdefault(vendor, {})

    def balances(self) -> dict[str, Decimal]:
        """The configured balance of every credential id."""
        return {key: cred.balance for creds in self.credentials.values() for key, cred in creds.items()}
