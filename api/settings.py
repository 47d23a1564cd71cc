"""The API's own knobs (prefix MSGRELAY_, `.env` honoured), until they join `msgrelay.settings.Settings`."""
from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: the default cap on one request body: a JSON job of about four million mobiles
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024


class ApiSettings(BaseSettings):
    """Limits of the HTTP API."""

    model_config = SettingsConfigDict(env_prefix="MSGRELAY_", env_file=".env", extra="ignore")

    # a request body larger than this is refused with 413 before more of it is read
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
