"""The suppression list: add, remove, list, look up many mobiles at once, and opt-outs from inbound replies."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from models import is_sqlite, session_scope, utcnow
from models.policy import EVERY_ACCOUNT, Suppression
from msgrelay import audit
from msgrelay.accounts import Account
from providers.errors import InvalidInput, NotFound
from providers.sending_rules import is_opt_out, mobile_key
from providers.values import Inbound

#: a chunk's few hundred keys: one index probe each (LATERAL … LIMIT 1), whatever the statistics say (a list
#: bulk-loaded and not yet analyzed looks tiny, and the planner would hash all of it for every chunk: 27 vs 3 ms)
_PROBE_PG = text("SELECT v.key FROM unnest(CAST(:keys AS varchar(32)[])) AS v(key) CROSS JOIN LATERAL ("
                 "SELECT 1 FROM suppression s WHERE s.scope = ANY(CAST(:scopes AS varchar(64)[])) AND s.mobile = v.key "
                 "LIMIT 1) AS hit")
#: a submit's batch of thousands: let the planner join (one pass over the list beats thousands of probes)
_JOIN_PG = text("SELECT DISTINCT s.mobile FROM unnest(CAST(:keys AS varchar(32)[])) AS v(key) "
                "JOIN suppression s ON s.mobile = v.key AND s.scope = ANY(CAST(:scopes AS varchar(64)[]))")
_PROBE_AT_MOST = 2000
_SQLITE_PARAMS = 900


def key_of(field: str, mobile: object) -> str:
    """The key of a mobile given by an operator; InvalidInput naming `field` when it holds no phone number."""
    if not isinstance(mobile, str) or not mobile.strip():
        raise InvalidInput(field, "is required: a mobile number")
    key = mobile_key(mobile)
    if not 5 <= len(key) <= 20 or len(mobile) > 32:
        raise InvalidInput(field, f"{mobile!r} is not a phone number (5 to 20 digits, `+` or `00` before a country "
                                  "code allowed)")
    return key


def check_scope(accounts: Mapping[str, Account], scope: object) -> str:
    """`*` or a configured account's name; InvalidInput naming `scope` otherwise."""
    if scope in (None, "", EVERY_ACCOUNT):
        return EVERY_ACCOUNT
    if not isinstance(scope, str) or scope not in accounts:
        known = ", ".join(sorted(accounts)) or "none configured"
        raise InvalidInput("scope", f"must be \"*\" (every account) or an account name; known: {known}")
    return scope


def as_dict(row: Suppression) -> dict:
    """A suppression as the API and CLI show it."""
    return {"mobile": row.mobile, "scope": row.scope, "reason": row.reason, "source": row.source,
            "created_at": row.created_at.isoformat()}


def _insert(session: Session, rows: Sequence[dict]) -> int:
    """Insert suppressions, skipping any (scope, mobile) already listed; returns how many were new."""
    if not rows:
        return 0
    dialect = sqlite if is_sqlite(session.get_bind()) else postgresql
    stmt = (dialect.insert(Suppression).values(list(rows)).on_conflict_do_nothing(index_elements=["scope", "mobile"])
            .returning(Suppression.id))
    return len(session.execute(stmt).all())


def add(accounts: Mapping[str, Account], mobile: object, *, scope: object = None, reason: str | None = None,
        source: str = "api", by: str | None = None) -> tuple[dict, bool]:
    """Suppress a mobile for one account or all; returns the row and whether it is new (an existing one stays).
    `by` (an API key's name, or `cli`) writes the audit row in the same transaction."""
    key, where = key_of("mobile", mobile), check_scope(accounts, scope)
    if reason is not None and len(reason) > 255:
        raise InvalidInput("reason", f"at most 255 characters, got {len(reason)}")
    with session_scope() as session:
        new = _insert(session, [{"scope": where, "mobile": key, "reason": reason, "source": source,
                                 "created_at": utcnow()}])
        if by is not None:
            audit.record(session, by, audit.Action.SUPPRESSION_ADD, f"suppression:{where}:{key}",
                         reason if new else "suppressed already: the first entry is kept")
        row = session.scalars(select(Suppression).where(Suppression.scope == where, Suppression.mobile == key)).one()
        return as_dict(row), bool(new)


def remove(mobile: object, *, scope: object = None, by: str | None = None) -> None:
    """Lift a suppression (scope `*` unless named); NotFound when there is none. `by` writes the audit row in the
    same transaction."""
    key = key_of("mobile", mobile)
    where = EVERY_ACCOUNT if scope in (None, "") else scope
    with session_scope() as session:
        gone = session.execute(delete(Suppression).where(Suppression.scope == where, Suppression.mobile == key))
        if not gone.rowcount:
            raise NotFound("mobile", f"{key} is not suppressed in scope {where!r}")
        if by is not None:
            audit.record(session, by, audit.Action.SUPPRESSION_REMOVE, f"suppression:{where}:{key}")


def listed(*, scope: str | None = None, mobile: str | None = None, limit: int = 100, offset: int = 0,
           scopes: Sequence[str] | None = None) -> list[dict]:
    """Newest first, optionally of one scope or one mobile (and only of `scopes`, when given)."""
    with session_scope() as session:
        query = select(Suppression)
        if scope:
            query = query.where(Suppression.scope == scope)
        if scopes is not None:
            query = query.where(Suppression.scope.in_(list(scopes)))
        if mobile:
            query = query.where(Suppression.mobile == key_of("mobile", mobile))
        rows = session.scalars(query.order_by(Suppression.id.desc()).limit(limit).offset(offset))
        return [as_dict(r) for r in rows]


class Lookup:
    """The suppression checks of one submit: a few keys are probed one by one; from the first batch of thousands
    on, the account's whole list is read once and kept (a list of 100,000 is ~7 MB and one query, where a
    million recipients probed in batches would cost a join per batch)."""

    def __init__(self, session: Session, accounts: Sequence[str]) -> None:
        self.session, self.accounts = session, accounts
        self.listed: set[str] | None = None

    def hits(self, keys: Sequence[str]) -> set[str]:
        """Which of `keys` are suppressed for the accounts."""
        if self.listed is None and len(keys) <= _PROBE_AT_MOST:
            return suppressed_keys(self.session, self.accounts, keys)
        if self.listed is None:
            self.listed = set(self.session.scalars(select(Suppression.mobile).where(
                Suppression.scope.in_(_scopes(self.accounts)))))
        return self.listed.intersection(keys)


def _scopes(accounts: Sequence[str]) -> list[str]:
    return [*accounts, EVERY_ACCOUNT]


def added_since(session: Session, accounts: Sequence[str], keys: Sequence[str], since: datetime) -> set[str]:
    """Which of `keys` were suppressed for `accounts` at or after `since` (a chunk's check of what changed since
    its job was submitted: usually nothing, one index range; the full probe when the list grew a lot)."""
    recent = session.scalars(select(Suppression.mobile).where(
        Suppression.scope.in_(_scopes(accounts)), Suppression.created_at >= since).limit(_PROBE_AT_MOST + 1)).all()
    if len(recent) > _PROBE_AT_MOST:
        return suppressed_keys(session, accounts, keys)
    return set(recent).intersection(keys)


def suppressed_keys(session: Session, accounts: Sequence[str], keys: Sequence[str]) -> set[str]:
    """Which of `keys` are suppressed for any of `accounts` (their own lists or every account's)."""
    if not keys:
        return set()
    if not is_sqlite(session.get_bind()):
        lookup = _PROBE_PG if len(keys) <= _PROBE_AT_MOST else _JOIN_PG
        return set(session.scalars(lookup, {"keys": list(keys), "scopes": _scopes(accounts)}))
    found: set[str] = set()
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), _SQLITE_PARAMS):
        found.update(session.scalars(select(Suppression.mobile).where(
            Suppression.scope.in_(_scopes(accounts)), Suppression.mobile.in_(unique[start:start + _SQLITE_PARAMS]))))
    return found


def opt_out(session: Session, account: Account, kinds: Iterable[str], replies: Iterable[Inbound]) -> int:
    """Suppress, for this account, each mobile whose reply is one of its opt-out words (in the transaction that
    stores the replies); returns how many were new."""
    words = account.opt_out_words(kinds)
    if not words:
        return 0
    now = utcnow()
    rows = {mobile_key(r.mobile): {"scope": account.name, "mobile": mobile_key(r.mobile), "source": "inbound",
                                   "reason": f"replied {r.content.strip()[:40]!r}", "created_at": now}
            for r in replies if is_opt_out(r.content, words) and mobile_key(r.mobile)}
    return _insert(session, list(rows.values()))
