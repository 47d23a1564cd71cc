"""What the simulator remembers: accepted requests, pending reports, injected replies, push targets, faults
and counters.

Every method is O(size of its own request): counters and the duplicate set are kept incrementally so a
benchmark sending millions of recipients never pays for the records already held.  Control-route
queries (``requests``, ``outcomes``) may walk the records; they are not on the send path.
The faults themselves (``Faults``) and how a route meets them are ``faults``.
"""
from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import NamedTuple

from providers.simulator.config import SimConfig
from providers.simulator.faults import CURRENT, Faults, current_endpoint

HOLD_TICK_S = 0.02  # how often a held answer looks whether the faults were replaced


class RequestRecord(NamedTuple):
    """One accepted send request, kept column-wise: a few objects per request, not one per recipient.

    Provider ids are consecutive within a request, so only the first sequence number is stored.
    """

    id: int
    endpoint: str
    app_id: str
    service: str
    mobiles: list[str]
    custom_ids: list[str] | None  # None when the request carried no custom ids
    states: list[str]
    first_seq: int
    id_prefix: int
    at: float  # Unix seconds
    ready_at: float  # time.monotonic() when its reports become available
    key_content: str  # join: the key that triggers the SMS ("" when none)
    arrived_at: float = 0.0  # Unix seconds: when the request reached the simulator (before any injected latency)

    def custom_id(self, i: int) -> str | None:
        """The i-th recipient's custom id, or None."""
        return self.custom_ids[i] if self.custom_ids is not None else None

    def provider_id(self, i: int) -> str:
        """The i-th recipient's provider id: 20 digits."""
        return f"{self.id_prefix:010d}{self.first_seq + i:010d}"


class ReportRef(NamedTuple):
    """One recipient's report, handed out once: the request and the recipient's index in it."""

    record: RequestRecord
    index: int


class PushTarget(NamedTuple):
    """Where an app's reports are pushed, and whether encrypted."""

    url: str
    encrypted: bool


class SimState:
    """Thread-safe store shared by the request handlers and the push thread."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        # provider ids: start second + counter, 20 digits, unique across restarts a second apart
        self._id_prefix = int(time.time()) % 10**10
        self._seq = 1  # next provider-id sequence number; never reset, so ids stay unique
        self._request_ids = itertools.count(1)
        self.generation = 0  # bumped by reset, so a push in flight cannot bring old reports back
        self.closing = threading.Event()  # set when the app shuts down: background pushers finish
        self._faults_version = 0  # bumped whenever the faults are replaced: held answers are released
        # answers held right now (stall or delay), outliving a reset: token -> (endpoint, record ids, since)
        self._holding: dict[object, tuple[str, list[int], float]] = {}
        self.reset()

    # ---- lifecycle -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget records, reports, injected replies, faults, push targets and counters; balances back to the
        config."""
        with self._lock:
            self.generation += 1
            self.records: list[RequestRecord] = []
            # per app: [record, index of its next report not yet handed out], in acceptance order
            self._pending: dict[str, deque[list]] = defaultdict(deque)
            self._held: dict[str, deque[ReportRef]] = defaultdict(deque)  # failed pushes, for getReport
            self._push: dict[str, PushTarget] = {}
            self._replies: dict[str, deque[dict[str, str]]] = defaultdict(deque)  # per app, from /_sim/reply
            self._balances = self.config.balances()
            self._accepted: Counter[str] = Counter()
            self._refused: Counter[str] = Counter()
            self._max_recipients: dict[str, int] = {}
            self._accepted_recipients = 0
            # duplicate detection per app: custom ids seen, and mobiles seen without a custom id
            self._seen_ids: dict[str, set[str]] = defaultdict(set)
            self._seen_mobiles: dict[str, set[str]] = defaultdict(set)
            self._duplicates = 0
            self._state_counts: Counter[str] = Counter()
            self._http_5xx = 0
            self._fault_counts: dict[str, Counter[str]] = defaultdict(Counter)  # fault -> endpoint -> count
            self._record_faults: dict[int, list[str]] = defaultdict(list)  # accepted request id -> faults met
            self._push_stats: Counter[str] = Counter()
            self._arrivals: dict[str, deque[float]] = defaultdict(deque)
            self._set_faults(Faults())

    def _set_faults(self, faults: Faults) -> None:
        self._faults = faults
        self._faults_version += 1
        self._bad_mobiles = frozenset(faults.bad_mobiles)
        self._rngs: dict[str, random.Random] = {}  # one generator per endpoint, made on its first draw

    # ---- faults ----------------------------------------------------------------------------------
    @property
    def faults(self) -> Faults:
        """The faults in force."""
        return self._faults

    @property
    def bad_mobiles(self) -> frozenset[str]:
        """Mobiles the provider refuses as ERROR_MOBILE_ERROR."""
        return self._bad_mobiles

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault set (re-seeding its generators, releasing every held answer)."""
        with self._lock:
            self._set_faults(faults)

    def draw(self, rate: float) -> bool:
        """True with probability `rate`, from the seeded generator of the endpoint being answered."""
        if rate <= 0:
            return False
        endpoint = current_endpoint()
        with self._lock:
            rng = self._rngs.get(endpoint)
            if rng is None:  # a string seed is hashed with SHA-512: the same sequence in every process
                rng = self._rngs[endpoint] = random.Random(f"{self._faults.seed}:{endpoint}")
            return rng.random() < rate

    def draw_fault(self, name: str, rate: float) -> bool:
        """Draw a fault at `rate` (see ``draw``); when it hits, count it (``count_fault``)."""
        hit = self.draw(rate)
        if hit:
            self.count_fault(name)
        return hit

    def count_fault(self, name: str) -> None:
        """Count a fault met by the request being answered, by endpoint, and mark the requests it recorded."""
        note = CURRENT.get()
        with self._lock:
            self._fault_counts[name][note.endpoint if note else ""] += 1
            for record_id in note.record_ids if note else ():
                self._record_faults[record_id].append(name)

    async def hold_answer(self, seconds: float) -> None:
        """Hold the answer being made `seconds`, or until the faults are replaced or the simulator reset."""
        note, token = CURRENT.get(), object()
        version, deadline = self._faults_version, time.monotonic() + seconds
        with self._lock:
            self._holding[token] = (note.endpoint if note else "", list(note.record_ids if note else ()),
                                    time.monotonic())
        try:
            while (left := deadline - time.monotonic()) > 0 and version == self._faults_version:
                await asyncio.sleep(min(left, HOLD_TICK_S))
        finally:
            with self._lock:
                del self._holding[token]

    def admit(self, app_id: str, now: float) -> bool:
        """Sliding one-second window: False when the app already had max_requests_per_s admitted."""
        limit = self._faults.max_requests_per_s
        if limit is None:
            return True
        with self._lock:
            window = self._arrivals[app_id]
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(now)
            return True

    # ---- counters --------------------------------------------------------------------------------
    def refuse(self, code: str) -> None:
        """Count a request answered with an error code."""
        with self._lock:
            self._refused[code] += 1

    def count_5xx(self) -> None:
        """Count an injected HTTP 5xx answer."""
        with self._lock:
            self._http_5xx += 1

    def count_push(self, what: str, n: int = 1) -> None:
        """Count push attempts, delivered and failed batches, pushed reports."""
        with self._lock:
            self._push_stats[what] += n

    # ---- balances --------------------------------------------------------------------------------
    def balance(self, app_id: str) -> Decimal:
        """The app's current balance."""
        return self._balances[app_id]

    def set_balance(self, app_id: str, balance: Decimal) -> None:
        """Set an app's balance."""
        with self._lock:
            self._balances[app_id] = balance

    # ---- accepting -------------------------------------------------------------------------------
    def accept(
        self,
        endpoint: str,
        app_id: str,
        service: str,
        mobiles: list[str],
        custom_ids: list[str] | None,
        outcome: Callable[[str], str],
        *,
        key_content: str = "",
    ) -> RequestRecord | None:
        """Charge one unit per recipient, record the request and schedule reports; None if too poor."""
        now_wall = time.time()
        ready_at = time.monotonic() + self.config.report_delay_s
        states = [outcome(m) for m in mobiles]
        with self._lock:
            cost = Decimal(len(mobiles))
            if self._balances[app_id] < cost:
                return None
            self._balances[app_id] -= cost
            record = RequestRecord(
                next(self._request_ids), endpoint, app_id, service, mobiles, custom_ids, states,
                self._seq, self._id_prefix, now_wall, ready_at, key_content,
                note.arrived_at if (note := CURRENT.get()) is not None else now_wall,
            )
            self._seq += len(mobiles)
            self.records.append(record)
            self._accepted[endpoint] += 1
            self._max_recipients[endpoint] = max(self._max_recipients.get(endpoint, 0), len(mobiles))
            self._accepted_recipients += len(mobiles)
            self._state_counts.update(states)
            seen = self._seen_ids[app_id] if custom_ids is not None else self._seen_mobiles[app_id]
            before = len(seen)
            seen.update(custom_ids if custom_ids is not None else mobiles)
            self._duplicates += len(mobiles) - (len(seen) - before)
            self._pending[app_id].append([record, 0])
        if (note := CURRENT.get()) is not None:
            note.record_ids.append(record.id)
        return record

    def accepted_again(self) -> None:
        """The request being answered repeats one accepted earlier and gets its answer (ihuyi's request_id)."""
        if (note := CURRENT.get()) is not None:
            note.repeated = True

    # ---- reports ---------------------------------------------------------------------------------
    def take_reports(self, app_id: str, n: int, *, for_push: bool = False) -> list[ReportRef]:
        """Remove and return up to n ready reports (each handed out once).

        For getReport: reports whose push failed, then (only when no push target is set) ready ones.
        For the pusher: ready ones only.
        """
        now = time.monotonic()
        out: list[ReportRef] = []
        with self._lock:
            if not for_push:
                held = self._held[app_id]
                while held and len(out) < n:
                    out.append(held.popleft())
            if not for_push and app_id in self._push:
                return out
            pending = self._pending[app_id]
            while pending and len(out) < n and pending[0][0].ready_at <= now:
                cell = pending[0]
                record, start = cell
                stop = min(len(record.mobiles), start + n - len(out))
                out.extend(ReportRef(record, i) for i in range(start, stop))
                if stop == len(record.mobiles):
                    pending.popleft()
                else:
                    cell[1] = stop
        return out

    def hold(self, app_id: str, reports: Iterable[ReportRef], *, generation: int) -> None:
        """Put reports whose push failed back, for getReport only (unless a reset came in between)."""
        with self._lock:
            if generation == self.generation:
                self._held[app_id].extend(reports)

    # ---- injected replies (/_sim/reply) ------------------------------------------------------------
    def last_request_to(self, app_id: str, mobile: str) -> RequestRecord | None:
        """The app's latest accepted request with `mobile` among its recipients (walks the records: control routes
        only)."""
        with self._lock:
            records = list(self.records)
        return next((r for r in reversed(records) if r.app_id == app_id and mobile in r.mobiles), None)

    def inject_reply(self, app_id: str, reply: dict[str, str]) -> None:
        """Keep one reply, already in its vendor's shape, until the app's routes hand it out."""
        with self._lock:
            self._replies[app_id].append(reply)

    def take_replies(self, app_id: str, n: int) -> list[dict[str, str]]:
        """Remove and return up to n injected replies of the app, oldest first (each handed out once)."""
        with self._lock:
            queue = self._replies.get(app_id)
            return [queue.popleft() for _ in range(min(n, len(queue)))] if queue else []

    def set_push(self, app_id: str, target: PushTarget | None) -> None:
        """Push this app's reports to a URL (None: keep them for getReport)."""
        with self._lock:
            if target is None:
                self._push.pop(app_id, None)
            else:
                self._push[app_id] = target

    def push_targets(self) -> dict[str, PushTarget]:
        """A snapshot of the push targets."""
        with self._lock:
            return dict(self._push)

    # ---- control-route views ---------------------------------------------------------------------
    def requests_json(self, endpoint: str | None, offset: int, limit: int | None) -> list[dict]:
        """Accepted requests as JSON objects, optionally for one endpoint."""
        with self._lock:
            records = [r for r in self.records if endpoint is None or r.endpoint == endpoint]
            faults = {k: list(v) for k, v in self._record_faults.items()}
        end = None if limit is None else offset + limit
        return [
            {
                "id": r.id,
                "endpoint": r.endpoint,
                "app_id": r.app_id,
                "faults": list(faults.get(r.id, ())),
                "recipients": [
                    {"mobile": m, "custom_id": r.custom_id(i), "provider_id": r.provider_id(i)}
                    for i, m in enumerate(r.mobiles)
                ],
                "at": r.at,
                "arrived_at": r.arrived_at,
            }
            for r in records[offset:end]
        ]

    def stats_json(self) -> dict:
        """Counters: accepted by endpoint, refused by code, batch sizes, recipients, duplicates, 5xx, pushes;
        faults met by endpoint, the answers held right now (how long each has been), injected replies waiting."""
        now = time.monotonic()
        with self._lock:
            return {
                "accepted_requests": dict(self._accepted),
                "refused": dict(self._refused),
                "max_recipients_per_request": dict(self._max_recipients),
                "accepted_recipients": self._accepted_recipients,
                "duplicates": self._duplicates,
                "http_5xx": self._http_5xx,
                "faults": {name: dict(by_endpoint) for name, by_endpoint in self._fault_counts.items()},
                "answers_held": [{"endpoint": endpoint, "record_ids": ids, "held_s": round(now - since, 3)}
                                 for endpoint, ids, since in self._holding.values()],
                "pushes": dict(self._push_stats),
                "pending_reports": sum(len(c[0].mobiles) - c[1] for d in self._pending.values() for c in d)
                + sum(len(d) for d in self._held.values()),
                "replies_waiting": sum(len(d) for d in self._replies.values()),
            }

    def outcomes_json(self) -> dict:
        """Every accepted recipient's outcome, keyed by custom id (provider id when none was given)."""
        with self._lock:
            records = list(self.records)
            counts = dict(self._state_counts)
        by_custom_id = {
            r.custom_id(i) or r.provider_id(i): state for r in records for i, state in enumerate(r.states)
        }
        return {"by_custom_id": by_custom_id, "counts": counts}
