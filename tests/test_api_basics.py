"""API basics: bearer auth, health, metrics, redacted access log, loopback-only without a token."""
from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from api.app import create_app, redact_path

pytestmark = pytest.mark.db


@pytest.fixture
def client(database):
    with TestClient(create_app()) as c:
        yield c


@pytest.fixture
def token(monkeypatch):
    from msgrelay.settings import get_settings
    monkeypatch.setenv("MSGRELAY_API_TOKEN", "t0ken-abc")
    get_settings.cache_clear()
    yield "t0ken-abc"
    monkeypatch.delenv("MSGRELAY_API_TOKEN")
    get_settings.cache_clear()


def test_bearer_token_guards_v1_when_set(client, token):
    assert client.get("/v1/jobs").status_code == 401
    assert client.get("/v1/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/healthz").status_code == 200  # health stays open


def test_healthz_checks_database_and_redis(client):
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "database": "ok", "redis": "ok"}


def test_metrics_are_prometheus_text(client):
    text = client.get("/metrics").text
    assert "# TYPE msgrelay_messages gauge" in text and "# TYPE msgrelay_jobs gauge" in text


@pytest.mark.parametrize("path, shown", [
    ("/callbacks/emay/voice/s3cret", "/callbacks/emay/voice/***"),
    ("/callbacks/ihuyi/mms/s3cret/receipt", "/callbacks/ihuyi/mms/***/receipt"),
    ("/v1/jobs/3", "/v1/jobs/3"),
])
def test_callback_tokens_are_redacted_from_paths(path, shown):
    assert redact_path(path) == shown


def test_access_log_never_shows_the_token(client, caplog):
    with caplog.at_level(logging.INFO, logger="msgrelay.api"):
        client.post("/callbacks/emay/voice/very-secret-token", content=b"{}")
    assert "very-secret-token" not in caplog.text and "/callbacks/emay/voice/***" in caplog.text


def test_api_refuses_public_bind_without_token():
    env = {k: v for k, v in os.environ.items() if k != "MSGRELAY_API_TOKEN"}
    out = subprocess.run([sys.executable, "-m", "msgrelay.cli", "api", "--host", "0.0.0.0"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "MSGRELAY_API_TOKEN" in out.stderr
