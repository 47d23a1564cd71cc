"""Settings from the environment (prefix MSGRELAY_, `.env` honoured): one pydantic-settings object."""
from __future__ import annotations

import os
import tempfile
from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from models.db import DatabaseSettings
from providers.errors import ConfigError

LOG_FORMATS = ("text", "json")  # msgrelay/logs.py writes them


class Settings(DatabaseSettings):
    """Every knob of msgrelay; the contract's four first, then tuning with sane defaults."""

    model_config = SettingsConfigDict(env_prefix="MSGRELAY_", env_file=".env", extra="ignore")

    # database_url: from DatabaseSettings, its one home
    broker_url: str | None = None  # unset: `msgrelay up`/`demo` start an embedded Redis and set it
    accounts_file: str = "accounts.toml"
    # a running process reads the accounts file again when it changed, looking this often (0: never)
    accounts_reload_s: float = Field(default=2.0, ge=0)
    api_token: SecretStr | None = None

    # Redis for locks and the rate limiter; defaults to the broker.
    redis_url: str | None = None
    # Redis redelivers an unacknowledged task after this; every countdown stays well under it (DESIGN §7.2).
    visibility_timeout_s: int = 3600
    http_read_timeout_s: float = 30.0
    retry_max: int = 8
    retry_backoff_base_s: float = 2.0
    retry_backoff_max_s: float = 300.0
    # beat intervals
    poll_reports_every_s: float = 5.0
    poll_balances_every_s: float = 300.0
    poll_inbound_every_s: float = 30.0
    sweep_every_s: float = 15.0
    # a chunk `pending` this long past its due time is re-enqueued; one `sending` this long is presumed lost
    stale_pending_s: float = 60.0
    stale_sending_s: float = 120.0
    # a balance snapshot older than this is not trusted by the pre-send balance check
    balance_fresh_s: float = 900.0
    # a submitted/unknown message with no report after this becomes `expired`
    report_expiry_s: float = 72 * 3600.0
    # where a poll keeps a fetched answer when Redis fails just as it comes in (msgrelay/spool.py); the next poll on
    # this machine ingests it, so give a container's workers a volume here
    spool_dir: str = Field(default_factory=lambda: os.path.join(tempfile.gettempdir(), "msgrelay-spool"))
    # the API refuses a larger request body (413) before reading more of it: a JSON job of ~4 million mobiles
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    # … and a larger upload (POST /v1/jobs/upload streams its recipients to the database)
    max_upload_bytes: int = Field(default=1024 * 1024 * 1024, gt=0)
    # verification calls have the right of way (msgrelay/right_of_way.py): while one is in flight, a step of bulk
    # sends, report polls, webhook deliveries or a big submit waits for it this long at most (0: never waits)
    right_of_way_ms: int = Field(default=200, ge=0, le=10_000)

    # producer status webhooks (DESIGN §9): the default receiver of jobs without a callback_url, and the secrets
    # (comma-separated: the first is the newest; every one signs a `v1=`, so a receiver holding any verifies)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_timeout_s: float = Field(default=10.0, gt=0)  # connect and read, each: a slow receiver is a failure
    webhook_batch: int = Field(default=500, ge=1, le=500)  # events per POST (at most 500: DESIGN §9)
    webhook_parallel: int = Field(default=2, ge=1, le=16)  # POSTs in flight per receiver
    webhook_dispatch_every_s: float = Field(default=1.0, gt=0)  # beat: look for receivers with work
    webhook_drain_s: float = Field(default=20.0, gt=0)  # one task sends for a receiver this long, then yields
    webhook_retry_base_s: float = Field(default=10.0, gt=0)  # backoff: base · 2^(tries-1), jittered
    webhook_retry_max_s: float = Field(default=3600.0, gt=0)  # … capped here
    webhook_retry_horizon_s: float = Field(default=24 * 3600.0, gt=0)  # failing this long after the first try: dead
    webhook_stale_sending_s: float = Field(default=120.0, gt=0)  # a delivery `sending` this long: its worker is lost

    # logs (issue 13): `text` as Celery and uvicorn print them, or `json`, one object a line; secrets redacted in both
    log_format: str = "text"

    @field_validator("log_format", mode="before")
    @classmethod
    def _known_log_format(cls, value: object) -> str:
        # ConfigError, not ValueError: pydantic lets it through, and every start-up check reports it like a bad
        # accounts file (one line, exit 2) instead of a ValidationError's traceback
        word = str(value).strip().lower()
        if word not in LOG_FORMATS:
            raise ConfigError(f"MSGRELAY_LOG_FORMAT: must be one of {', '.join(LOG_FORMATS)}, not {str(value)!r}")
        return word

    def webhook_secrets(self) -> list[str]:
        """The webhook secrets in order (the first is the newest), without blanks."""
        raw = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
        return [part.strip() for part in raw.split(",") if part.strip()]

    def effective_broker_url(self) -> str:
        """The broker a bare `celery -A tasks worker` uses when nothing is set."""
        return self.broker_url or "redis://127.0.0.1:6379/0"

    def effective_redis_url(self) -> str:
        """Redis for locks and rate limits."""
        return self.redis_url or self.effective_broker_url()

    @property
    def right_of_way_s(self) -> float:
        """`right_of_way_ms` in seconds: the most a throughput step waits for verification calls in flight."""
        return self.right_of_way_ms / 1000


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()


def reload_settings() -> Settings:
    """Read the environment again (after a process changed it, e.g. the demo pointing at its own database)."""
    from models.db import database_settings

    get_settings.cache_clear()
    database_settings.cache_clear()
    return get_settings()
