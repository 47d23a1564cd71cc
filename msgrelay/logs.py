"""Logs (issue 13): text as Celery and uvicorn print it, or one JSON object a line (`MSGRELAY_LOG_FORMAT=json`)
carrying the job, chunk, account and task at hand; either way every secret the process knows is written `***`.

The work at hand is kept in a context variable: `with log_context(job_id=…, chunk_id=…):` around a task's body
makes every line logged inside it (by any module, in that thread) carry those fields, without changing a log call;
`extra={"job_id": …}` on one call works too. Worker and beat install this from `tasks/app.py`'s logging signals;
the API's uvicorn takes `uvicorn_log_config()`.
"""
from __future__ import annotations

import importlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

from pydantic import BaseModel, SecretStr

from providers.errors import ConfigError

REDACTED = "***"
#: the fields a line may carry beside time, level, logger, message and process, in the order they are written
CONTEXT_FIELDS = ("job_id", "chunk_id", "account", "receiver_id", "task", "task_id")
#: shorter secret values are not searched for: every line would lose its digits and short words to `***`
MIN_SECRET_LEN = 4
#: the loggers uvicorn configures for itself (they do not propagate to the root logger)
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# /callbacks/<provider>/<account>/<token>: the push URL's token, even one no account holds (a guess, an old one)
_TOKEN_IN_PATH = re.compile(r"(/callbacks/[^/\s]+/[^/\s]+/)[^/\s?#\"']+")

_NOTHING: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, Any]] = ContextVar("msgrelay_log_context", default=_NOTHING)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Within the block, every line logged in this thread carries these fields (None values are left out)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def begin_task(name: str, task_id: str | None) -> Token:
    """Start a task's context afresh (Celery's task_prerun): its lines carry `task` and `task_id`."""
    return _context.set({"task": name, "task_id": task_id})


def end_task(token: Token) -> None:
    """Put back the context `begin_task` replaced (Celery's task_postrun)."""
    try:
        _context.reset(token)
    except ValueError:  # set in another context (a task run eagerly elsewhere): nothing of ours to undo
        pass


# ---- secrets -------------------------------------------------------------------------------------------------

def _variants(value: str) -> set[str]:
    """A secret as it may be written: as is, and percent-encoded (a URL's query or a form body)."""
    return {value, quote(value, safe=""), quote_plus(value, safe="")}


def _model_secrets(model: BaseModel) -> Iterator[str]:
    """The values of a model's SecretStr fields."""
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        if isinstance(value, SecretStr):
            yield value.get_secret_value()


def _settings_secrets(settings: BaseModel) -> Iterator[str]:
    """The settings' secrets: SecretStr fields (each comma-separated part too) and the passwords inside URLs."""
    for value in _model_secrets(settings):
        yield value
        yield from (part.strip() for part in value.split(","))
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, str) and "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                continue
            if password:
                yield password
                yield unquote(password)  # as written in the URL, and as the server is given it


def secret_values(accounts: Mapping[str, Any], settings: BaseModel | None = None) -> list[str]:
    """Every secret value the process knows, longest first: the accounts' SecretStr fields (secret keys, API keys,
    passwords, callback tokens), the API keys' hashes, and the settings' secrets (API token, webhook secrets, URL
    passwords)."""
    found: set[str] = set()
    for account in accounts.values():
        if isinstance(account, BaseModel):
            found.update(_model_secrets(account))
    found.update(key.token_sha256 for key in getattr(accounts, "api_keys", {}).values())
    if settings is not None:
        found.update(_settings_secrets(settings))
    every = {v for value in found if len(value) >= MIN_SECRET_LEN for v in _variants(value)}
    return sorted(every, key=lambda v: (-len(v), v))


class Redactor:
    """Replaces every secret and callback token in a text by `***`. `source` gives the accounts and settings to
    take the secrets from; it is asked on each call (the accounts file may change) and the pattern is compiled again
    only when it gives other objects."""

    def __init__(self, source: Callable[[], tuple[Mapping[str, Any], BaseModel | None]]) -> None:
        self._source = source
        self._known: tuple[Mapping[str, Any], BaseModel | None] | None = None  # held: their ids stay theirs
        self._pattern: re.Pattern[str] | None = None
        self._busy = threading.local()  # reading the accounts may log: that line uses the secrets known before

    def __call__(self, text: str) -> str:
        """`text` with its secrets and callback tokens written `***`."""
        pattern = self._current()
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        return _TOKEN_IN_PATH.sub(rf"\1{REDACTED}", text) if "/callbacks/" in text else text

    def _current(self) -> re.Pattern[str] | None:
        if getattr(self._busy, "on", False):
            return self._pattern
        self._busy.on = True
        try:
            accounts, settings = self._source()
        except (ConfigError, ValueError):  # settings that cannot be read (start-up refuses them): keep what is known
            return self._pattern
        finally:
            self._busy.on = False
        known = self._known
        if known is None or known[0] is not accounts or known[1] is not settings:
            values = secret_values(accounts, settings)
            self._pattern = re.compile("|".join(map(re.escape, values))) if values else None
            self._known = (accounts, settings)
        return self._pattern


def process_secrets_source() -> tuple[Mapping[str, Any], BaseModel]:
    """This process's accounts and settings: the same objects until either is read again."""
    from msgrelay.accounts import get_accounts
    from msgrelay.settings import get_settings

    settings = get_settings()
    try:
        accounts: Mapping[str, Any] = get_accounts()
    except ConfigError:  # a bad file stops the process at start-up; until then its secrets are unknown
        accounts = _NOTHING
    return accounts, settings


redact = Redactor(process_secrets_source)


# ---- formatters ----------------------------------------------------------------------------------------------

class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, message, process, the work at hand (from the
    context or `extra`) and `exc`; Chinese text stays readable (no \\u escapes); secrets are `***`."""

    def __init__(self, redactor: Callable[[str], str] = redact) -> None:
        super().__init__()
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        when = datetime.fromtimestamp(record.created, tz=UTC)
        line: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        context = _context.get()
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name, context.get(name))  # extra={…} wins over the context
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # strings are redacted before encoding, so a secret holding a quote or a backslash is found as written
        return json.dumps({k: self._redact(v) if isinstance(v, str) else v for k, v in line.items()},
                          ensure_ascii=False, default=str)


class RedactingFormatter(logging.Formatter):
    """Another formatter's text, with secrets written `***` (the text format: lines look as they always did)."""

    def __init__(self, inner: logging.Formatter | None, redactor: Callable[[str], str] = redact) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        """The inner formatter's line, redacted."""
        return self._redact(self.inner.format(record))


def formatter_for(log_format: str, previous: logging.Formatter | None) -> logging.Formatter:
    """The formatter a handler gets: JSON, or its previous one wrapped to redact (never wrapped twice)."""
    if log_format == "json":
        return previous if isinstance(previous, JsonFormatter) else JsonFormatter()
    if isinstance(previous, RedactingFormatter):
        return previous
    if isinstance(previous, JsonFormatter):  # switched back: plain text
        return RedactingFormatter(None)
    return RedactingFormatter(previous)


def use_format(logger: logging.Logger, log_format: str | None = None) -> None:
    """Give every handler of `logger` the formatter of `log_format` (default: the settings')."""
    if log_format is None:
        from msgrelay.settings import get_settings

        log_format = get_settings().log_format
    for handler in logger.handlers:
        handler.setFormatter(formatter_for(log_format, handler.formatter))


def install(log_format: str | None = None, *, level: int = logging.INFO) -> None:
    """Set up this process's logs (the API at start-up, after uvicorn configured its loggers; a JSON worker before
    Celery configures its own). JSON: a root handler on stderr when there is none, warnings through logging, and
    every handler of the root and uvicorn's loggers writing JSON; text: the same handlers as before, redacting."""
    import sys

    if log_format is None:
        from msgrelay.settings import get_settings

        log_format = get_settings().log_format
    root = logging.getLogger()
    if log_format == "json":
        if not root.handlers:  # lines of msgrelay's own loggers (uvicorn has handlers of its own)
            root.addHandler(logging.StreamHandler(sys.stderr))
            if root.level > level or root.level == logging.NOTSET:
                root.setLevel(level)
        logging.captureWarnings(True)  # warnings too are JSON lines, not bare text on stderr
    for logger in (root, *map(logging.getLogger, UVICORN_LOGGERS)):
        use_format(logger, log_format)


def json_formatter(**_uvicorn_options: object) -> JsonFormatter:
    """A JsonFormatter for a `dictConfig` (uvicorn may add `use_colors`, which JSON has no use for)."""
    return JsonFormatter()


def redacting_formatter(inner: str, **options: Any) -> RedactingFormatter:
    """A `dictConfig` factory: the formatter class named `inner`, built with `options`, redacting."""
    module, _, name = inner.rpartition(".")
    return RedactingFormatter(getattr(importlib.import_module(module), name)(**options))


def uvicorn_log_config(log_format: str | None = None) -> dict[str, Any]:
    """`uvicorn.run(log_config=…)`: uvicorn's own configuration redacting (text), or every uvicorn and msgrelay
    line as JSON from the server's first line on (json)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    if log_format is None:
        from msgrelay.settings import get_settings

        log_format = get_settings().log_format
    config = copy.deepcopy(LOGGING_CONFIG)
    if log_format == "json":
        config["formatters"] = {name: {"()": "msgrelay.logs.json_formatter"} for name in config["formatters"]}
        config["handlers"]["root"] = {"class": "logging.StreamHandler", "formatter": "default",
                                      "stream": "ext://sys.stderr"}
        config["root"] = {"handlers": ["root"], "level": "INFO"}  # msgrelay's own lines (uvicorn's do not propagate)
        return config
    for spec in config["formatters"].values():
        spec["inner"] = spec.pop("()")
        spec["()"] = "msgrelay.logs.redacting_formatter"
    # msgrelay's own warnings as Python's last-resort handler writes them (the bare message), redacted
    config["formatters"]["plain"] = {"()": "msgrelay.logs.redacting_formatter", "inner": "logging.Formatter"}
    config["handlers"]["root"] = {"class": "logging.StreamHandler", "formatter": "plain", "level": "WARNING",
                                  "stream": "ext://sys.stderr"}
    config["root"] = {"handlers": ["root"], "level": "WARNING"}
    return config
