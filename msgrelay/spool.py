"""Pages fetched from a provider, kept in Redis before they are parsed and stored.

Report and inbound queries hand each item out once: a page fetched and then lost (the database went away, a
worker was killed, a row did not fit) is gone at the provider. So a poll keeps every fetched answer here first
(a Redis list per account and purpose; with AOF `everysec` it survives a Redis restart, losing at most a second)
and drops it only once its items are committed; the next poll ingests whatever is left, oldest first. The poll
holds the account's lock, so one poller at a time works a spool.

When Redis fails just as an answer comes in (the provider has handed it out, and it exists nowhere else), the
answer is kept in a file of this machine's disk spool instead (`MSGRELAY_SPOOL_DIR`), the poll stops there, and
the next poll on this machine ingests the files after the Redis list.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import re
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import redis

from msgrelay import metrics
from msgrelay.limits import get_redis
from msgrelay.settings import get_settings
from providers.base import HttpResponse
from providers.common import loads
from providers.errors import ProviderError

log = logging.getLogger(__name__)
PAGES_AHEAD = 4  # answers fetched (and kept) ahead of the batch being stored
WRITERS = 2  # batches stored at once, each in its own transaction


class KeptOnDisk(redis.RedisError):
    """Redis failed while an answer was being kept; the answer is kept in this machine's disk spool (`path`)."""

    def __init__(self, path: Path, cause: redis.RedisError) -> None:
        super().__init__(f"{type(cause).__name__}: the answer is kept in {path}")
        self.path = path


class Spool:
    """The fetched-but-not-yet-stored answers of one account's query (`purpose`: reports, inbound)."""

    def __init__(self, account: str, purpose: str, *, client: redis.Redis | None = None,
                 disk: Path | None = None) -> None:
        self.key, self.purpose = f"msgrelay:spool:{purpose}:{account}", purpose
        self.client = client or get_redis()
        self.disk = disk or _disk_folder(purpose, account)

    def keep(self, response: HttpResponse) -> None:
        """Append an answer exactly as it came, before anything is parsed or stored; if Redis fails, keep it on
        this machine's disk and raise KeptOnDisk (the RedisError itself when the disk fails too)."""
        answer = {"status": response.status, "text": response.text, "headers": dict(response.headers)}
        try:
            kept: bytes = orjson.dumps(answer)
        except orjson.JSONEncodeError:  # a lone surrogate in the text: the standard library escapes it
            kept = json.dumps(answer).encode()
        try:
            self.client.rpush(self.key, kept)
        except redis.RedisError as exc:
            try:
                path = self._write_file(kept)
            except OSError:
                log.exception("%s: Redis failed (%s) and the disk spool (MSGRELAY_SPOOL_DIR) too", self.key,
                              type(exc).__name__)
                raise exc from None
            log.warning("%s: Redis failed (%s): the answer is kept in %s", self.key, type(exc).__name__, path)
            metrics.SPOOL_ON_DISK.labels(self.purpose).inc()
            raise KeptOnDisk(path, exc) from exc

    def _write_file(self, kept: bytes) -> Path:
        """Write one answer to a new file of the disk spool, whole or not at all; its path (names sort by time)."""
        self.disk.mkdir(mode=0o700, parents=True, exist_ok=True)  # recipients' numbers: this user's alone
        path = self.disk / f"{time.time_ns():020d}-{os.getpid()}-{threading.get_ident()}.json"
        part = path.with_suffix(".part")
        with open(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(kept)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, path)
        directory = os.open(self.disk, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new name itself survives a crash
        finally:
            os.close(directory)
        return path

    def files(self) -> list[Path]:
        """The answers kept on this machine's disk, oldest first."""
        return sorted(self.disk.glob("*.json")) if self.disk.is_dir() else []

    def __len__(self) -> int:
        return int(self.client.llen(self.key)) + len(self.files())

    def drain(self, parse: Callable[[HttpResponse], Sequence[Any]], store: Callable[[Sequence[Any]], Any]) -> list[int]:
        """Parse and store every kept answer, oldest first, dropping each once stored; returns the number of
        items of each answer. An answer that parses to an error (e.g. the provider refused the query) holds
        no items and is dropped; a failure to store leaves it, and everything after it, for the next poll."""
        sizes: list[int] = []

        def ingest(kept: bytes) -> None:
            if (items := self._parse(parse, _answer(kept))) is not None:
                store(items)
                sizes.append(len(items))

        while (raw := self.client.lindex(self.key, 0)) is not None:
            ingest(raw)
            self.client.lpop(self.key)
        for path in self.files():  # kept while Redis was failing: after everything Redis kept before them
            ingest(path.read_bytes())
            path.unlink()
        return sizes

    def pull(self, fetch: Callable[[], HttpResponse], parse: Callable[[HttpResponse], Sequence[Any]],
             store: Callable[[Sequence[Any]], Any], *, pages: int, page_size: int, batch_items: int,
             after_page: Callable[[], Any] = lambda: None) -> list[int]:
        """Fetch up to `pages` answers until a short one, keeping each before it is parsed, and store their items
        in batches (one transaction for the pages that arrived while the last one was written, `batch_items` at
        most), dropping the answers of a batch once it is stored; returns the number of items of each answer. A
        thread fetches (and keeps) the next pages while batches are being written by `WRITERS` threads: `store` is
        called from several threads at once. Call with the spool drained; a failure to store leaves what is kept
        for the next poll."""
        ahead: queue.Queue = queue.Queue(maxsize=PAGES_AHEAD)
        stop = threading.Event()

        def fetcher() -> None:
            try:
                for _ in range(pages):
                    if stop.is_set():
                        return
                    response = fetch()
                    try:
                        self.keep(response)
                    except KeptOnDisk as exc:  # Redis went away: stored after what came before, then the poll
                        ahead.put(("disk", self._parse(parse, response), exc.path))  # stops; the file is the net
                        raise
                    except redis.RedisError:  # … and the disk failed too: stored without a safety net
                        ahead.put(("disk", self._parse(parse, response), None))
                        raise
                    items = self._parse(parse, response)
                    ahead.put(("page", items))
                    if items is None or len(items) < page_size:
                        break
                ahead.put(("end", None))
            except BaseException as exc:  # handed to the storing thread, which raises it
                ahead.put(("error", exc))

        thread = threading.Thread(target=fetcher, name=f"fetch {self.key}", daemon=True)
        thread.start()
        writers = _Writers(self, store, WRITERS)
        sizes: list[int] = []
        batch: list[Any] = []
        kept = 0
        try:
            while (got := ahead.get())[0] in ("page", "disk"):
                if got[0] == "disk":  # stored after the answers kept before it; then its file is removed
                    writers.submit(batch, kept)
                    batch, kept = [], 0
                    writers.submit(list(got[1] or ()), 0, file=got[2])
                    if got[1]:
                        sizes.append(len(got[1]))
                    continue
                kept += 1
                if got[1]:
                    batch += got[1]
                    sizes.append(len(got[1]))
                after_page()
                # write as soon as no further page is waiting and a writer is free (or the batch is full):
                # batches grow only while the database is the slower side
                if len(batch) >= batch_items or (ahead.empty() and writers.free()):
                    writers.submit(batch, kept)
                    batch, kept = [], 0
            if kept:  # what came before the end, or before a failure to fetch or keep (Redis gone): store it
                writers.submit(batch, kept)
        finally:
            stop.set()
            while thread.is_alive():  # unblock a fetcher waiting to hand over a page
                try:
                    ahead.get(timeout=0.05)
                except queue.Empty:
                    pass
            writers.close()  # waits for every batch; raises the first failure to store
        if got[0] == "error":
            raise got[1]
        return sizes

    def _parse(self, parse: Callable[[HttpResponse], Sequence[Any]], response: HttpResponse) -> Sequence[Any] | None:
        """The answer's items, or None for an answer that is no page of items (logged; it is dropped)."""
        try:
            return parse(response)
        except ProviderError as exc:
            log.warning("%s: a kept answer is no page of items (%s): dropped", self.key, exc.code)
            return None


class _Writers:
    """Batches of a spool's items stored by up to `n` threads at once (each its own transaction); the answers of
    a batch leave the spool only once it and every batch before it are stored, so a failure leaves it and all
    that came after it kept (stored again by the next poll: settling a report twice changes nothing)."""

    def __init__(self, spool: Spool, store: Callable[[Sequence[Any]], Any], n: int) -> None:
        self.spool, self.store, self.n = spool, store, n
        self.pool = ThreadPoolExecutor(n, thread_name_prefix=f"store {spool.key}")
        self.inflight: deque[tuple[Future, int, Path | None]] = deque()
        self.failed: BaseException | None = None

    def free(self) -> bool:
        """Whether a writer is idle (finished batches are dropped first)."""
        while self.inflight and self.inflight[0][0].done():
            self._finish_oldest()
        return len(self.inflight) < self.n

    def submit(self, items: list[Any], answers: int, *, file: Path | None = None) -> None:
        """Store `items`, the items of the next `answers` kept answers or of the answer kept in `file` (waiting
        for a writer if all are busy)."""
        while len(self.inflight) >= self.n:
            self._finish_oldest()
        if self.failed is not None:  # a batch before this one failed: this one stays kept for the next poll
            self.close()
        future: Future = self.pool.submit(self.store, items) if items else _done()
        self.inflight.append((future, answers, file))

    def close(self) -> None:
        """Wait for every batch; raise the first failure."""
        while self.inflight:
            self._finish_oldest()
        self.pool.shutdown(wait=True)
        if self.failed is not None:
            failed, self.failed = self.failed, None
            raise failed

    def _finish_oldest(self) -> None:
        future, answers, file = self.inflight.popleft()
        try:
            future.result()
        except BaseException as exc:
            self.failed = self.failed or exc
        if self.failed is None and file is not None:
            file.unlink()
        if self.failed is None and answers:
            try:
                self.spool.client.ltrim(self.spool.key, answers, -1)
            except redis.RedisError as exc:  # stored, but still kept: the next poll stores them again (no change)
                log.warning("%s: %d stored answers not dropped (%s)", self.spool.key, answers, type(exc).__name__)


def _answer(kept: bytes) -> HttpResponse:
    """A kept answer as it came."""
    answer = loads(kept)
    return HttpResponse(answer["status"], answer["text"], answer.get("headers") or {})


def _disk_folder(purpose: str, account: str) -> Path:
    """This deployment's folder for an account's answers: under a hash of its database, so that two deployments (or
    two test runs) on one machine with the same account names never drain each other's files."""
    settings = get_settings()
    deployment = hashlib.sha256(settings.database_url.encode()).hexdigest()[:12]
    return Path(settings.spool_dir) / deployment / purpose / _file_name(account)


def _file_name(account: str) -> str:
    """A folder name for an account: its name made safe, and a hash so that two names never share one."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', account)[:64]}-{hashlib.sha256(account.encode()).hexdigest()[:12]}"


def _done() -> Future:
    """A future that has finished with None."""
    future: Future = Future()
    future.set_result(None)
    return future
