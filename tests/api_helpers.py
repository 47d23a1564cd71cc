"""Shared scaffolding for the API hardening and fuzz tests: a bearer token in the environment, a fresh app with
its own settings, row counts."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select

TOKEN = "fuzz-T0ken-9Qx"


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """MSGRELAY_* variables set (None: unset) for the block, the settings cache cleared on the way in and out."""
    from msgrelay.settings import get_settings
    with pytest.MonkeyPatch.context() as mp:
        for name, value in values.items():
            if value is None:
                mp.delenv(name, raising=False)
            else:
                mp.setenv(name, value)
        get_settings.cache_clear()
        try:
            yield
        finally:
            get_settings.cache_clear()
    get_settings.cache_clear()


def auth(token: str = TOKEN) -> dict[str, str]:
    """The Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}


def count_rows(*tables: type) -> list[int]:
    """Rows in each table, in order."""
    from models import session_scope
    with session_scope() as session:
        return [session.scalar(select(func.count()).select_from(t)) for t in tables]


def stored_rows(*accounts: str) -> list[int]:
    """Rows of every table a push can write (report pages, raw reports, inbound messages, templates), of these
    accounts only when named (a worker polling other accounts keeps adding theirs)."""
    from models import InboundMessage, RawReport, ReportPage, Template, session_scope
    with session_scope() as session:
        return [session.scalar(select(func.count()).select_from(t).where(
            t.account.in_(accounts) if accounts else True))
            for t in (ReportPage, RawReport, InboundMessage, Template)]


def reports_kept(*accounts: str) -> int:
    """Delivery reports kept (every one is in one page), of these accounts only when named."""
    from models import ReportPage, session_scope
    with session_scope() as session:
        return session.scalar(select(func.coalesce(func.sum(ReportPage.size), 0)).where(
            ReportPage.account.in_(accounts) if accounts else True))


def encrypt_push(secret: str, body: bytes, *, gzipped: bool = True) -> bytes:
    """What Emay sends: `body` → gzip → AES/ECB/PKCS5Padding keyed with the raw secret."""
    import gzip

    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    padder = padding.PKCS7(128).padder()
    data = padder.update(gzip.compress(body) if gzipped else body) + padder.finalize()
    encryptor = Cipher(algorithms.AES(secret.encode()), modes.ECB()).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def job_count() -> int:
    """Jobs in the database."""
    from models import Job
    return count_rows(Job)[0]
