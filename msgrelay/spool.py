"""Pages fetched from a provider, kept in Redis before they are parsed and stored.

Report and inbound queries hand each item out once: a page fetched and then lost (the database went away, a
worker was killed, a row did not fit) is gone at the provider. So a poll keeps every fetched answer here first
(a Redis list per account and purpose; with AOF `everysec` it survives a Redis restart, losing at most a second)
and drops it only once its items are committed; the next poll ingests whatever is left, oldest first. The poll
holds the account's lock, so one poller at a time works a spool.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import redis

from msgrelay.limits import get_redis
from providers.base import HttpResponse
from providers.errors import ProviderError

log = logging.getLogger(__name__)


class Spool:
    """The fetched-but-not-yet-stored answers of one account's query (`purpose`: reports, inbound)."""

    def __init__(self, account: str, purpose: str, *, client: redis.Redis | None = None) -> None:
        self.key = f"msgrelay:spool:{purpose}:{account}"
        self.client = client or get_redis()

    def keep(self, response: HttpResponse) -> None:
        """Append an answer exactly as it came, before anything is parsed or stored."""
        self.client.rpush(self.key, json.dumps({"status": response.status, "text": response.text,
                                                "headers": dict(response.headers)}, ensure_ascii=False))

    def __len__(self) -> int:
        return int(self.client.llen(self.key))

    def drain(self, parse: Callable[[HttpResponse], Sequence[Any]], store: Callable[[Sequence[Any]], Any]) -> list[int]:
        """Parse and store every kept answer, oldest first, dropping each once stored; returns the number of
        items of each answer. An answer that parses to an error (e.g. the provider refused the query) holds
        no items and is dropped; a failure to store leaves it, and everything after it, for the next poll."""
        sizes: list[int] = []
        while (raw := self.client.lindex(self.key, 0)) is not None:
            kept = json.loads(raw)
            try:
                items = parse(HttpResponse(kept["status"], kept["text"], kept.get("headers") or {}))
            except ProviderError as exc:
                log.warning("%s: a kept answer is no page of items (%s): dropped", self.key, exc.code)
                items = None
            if items is not None:
                store(items)
                sizes.append(len(items))
            self.client.lpop(self.key)
        return sizes
