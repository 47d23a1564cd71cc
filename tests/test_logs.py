"""Logs (issue 13): records → JSON lines, the work at hand from the context or `extra`, every kind of secret
written `***` in both formats, and a bad MSGRELAY_LOG_FORMAT refused at start-up."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from celery.utils.log import ColorFormatter

from msgrelay.accounts import load_accounts
from msgrelay.logs import (
    JsonFormatter,
    RedactingFormatter,
    Redactor,
    log_context,
    use_format,
)
from msgrelay.settings import Settings
from providers.errors import ConfigError

API_TOKEN = "api-token-Hq27Lm"
WEBHOOK_NEW, WEBHOOK_OLD = "whsec-new-81kQ", "whsec-old-55pX"
DB_PASSWORD = "db-pw-Zt4%/x"  # percent-encoded in its URL
BROKER_PASSWORD = "redis-pw-9Uv"
SECRETS = {  # what each secret is → its value
    "emay secret_key": "sk-0f9e8d7c6b5a4321",
    "emay callback_token": "cb-token-Jw81",
    "ihuyi api_key": "ihuyi-key-7c2d1e",
    "ihuyi callback_token": "ihuyi-cb-Q7e2",
    "qyxs password": "qyxs-pw-Xy12&=",
    "api key token_sha256": hashlib.sha256(b"producer-token").hexdigest(),
    "MSGRELAY_API_TOKEN": API_TOKEN,
    "MSGRELAY_WEBHOOK_SECRET (newest)": WEBHOOK_NEW,
    "MSGRELAY_WEBHOOK_SECRET (older)": WEBHOOK_OLD,
    "MSGRELAY_DATABASE_URL password": DB_PASSWORD,
    "MSGRELAY_BROKER_URL password": BROKER_PASSWORD,
}


@pytest.fixture(scope="module")
def redactor(tmp_path_factory) -> Redactor:
    """Redaction of the secrets of a real accounts file (every provider's kind of secret) and of settings."""
    path = tmp_path_factory.mktemp("logs") / "accounts.toml"
    path.write_text(textwrap.dedent(f"""\
        [accounts.voice]
        provider = "emay_voice"
        base_url = "http://127.0.0.1:9"
        app_id = "EUCP-EMY-LOGS"
        secret_key = "{SECRETS['emay secret_key']}"
        callback_token = "{SECRETS['emay callback_token']}"

        [accounts.mms]
        provider = "ihuyi_mms"
        base_url = "http://127.0.0.1:9"
        api_id = "2RYN7CQHL1M"
        api_key = "{SECRETS['ihuyi api_key']}"
        product_id = 1001
        callback_token = "{SECRETS['ihuyi callback_token']}"

        [accounts.sms]
        provider = "qyxs_sms"
        base_url = "http://127.0.0.1:9"
        userid = "12"
        account = "smsuser"
        password = "{SECRETS['qyxs password']}"

        [api_keys.producer]
        token_sha256 = "{SECRETS['api key token_sha256']}"
        role = "producer"
        accounts = ["sms"]
        """), encoding="utf-8")
    accounts = load_accounts(path)
    settings = Settings(api_token=API_TOKEN, webhook_secret=f"{WEBHOOK_NEW}, {WEBHOOK_OLD}",
                        database_url=f"postgresql+psycopg://msg:{quote_plus(DB_PASSWORD)}@db:5432/msgrelay",
                        broker_url=f"redis://:{BROKER_PASSWORD}@redis:6379/0")
    return Redactor(lambda: (accounts, settings))


def emit(formatter: logging.Formatter, message: str, *args: object, exc: BaseException | None = None,
         **extra: object) -> str:
    """What one handler with `formatter` writes for one INFO record (ERROR with `exc`)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    log = logging.getLogger("msgrelay.test_logs")
    log.addHandler(handler)
    log.propagate, log.level = False, logging.INFO
    try:
        if exc is None:
            log.info(message, *args, extra=extra or None)
        else:
            try:
                raise exc
            except BaseException:
                log.exception(message, *args, extra=extra or None)
    finally:
        log.removeHandler(handler)
    return out.getvalue()


def one_json(text: str) -> dict:
    """The one JSON object of a one-line output."""
    lines = text.splitlines()
    assert len(lines) == 1, text
    return json.loads(lines[0])


@pytest.mark.parametrize(("args", "extra", "context", "expected", "absent"), [
    (("sent %s of %s", 3, 5), {}, {}, {"message": "sent 3 of 5", "level": "INFO", "logger": "msgrelay.test_logs"},
     ("job_id", "chunk_id", "account", "exc")),
    (("chunk: sent",), {}, {"job_id": 12, "chunk_id": 34, "account": "voice"},
     {"job_id": 12, "chunk_id": 34, "account": "voice"}, ("exc",)),
    (("from extra",), {"job_id": 7, "chunk_id": 8}, {}, {"job_id": 7, "chunk_id": 8}, ("account",)),
    (("extra wins",), {"job_id": 99}, {"job_id": 1, "chunk_id": 2}, {"job_id": 99, "chunk_id": 2}, ()),
    (("task lines",), {}, {"task": "tasks.send_chunk", "task_id": "abc-123", "receiver_id": 4},
     {"task": "tasks.send_chunk", "task_id": "abc-123", "receiver_id": 4}, ()),
    (("【测试】您的订单已发货 %s", "周末特惠"), {}, {}, {"message": "【测试】您的订单已发货 周末特惠"}, ()),
], ids=["plain", "context", "extra", "extra-over-context", "task-and-receiver", "chinese"])
def test_records_become_json_lines(redactor, args, extra, context, expected, absent):
    # when
    with log_context(**context):
        text = emit(JsonFormatter(redactor), *args, **extra)
    line = one_json(text)
    # then
    assert {k: line[k] for k in expected} == expected
    assert not set(absent) & set(line)
    assert {"time", "level", "logger", "message", "process"} <= set(line) and line["process"] == os.getpid()
    assert line["time"].endswith("Z") and "T" in line["time"]
    assert "\\u" not in text  # Chinese stays readable


def test_exceptions_are_one_line_with_their_traceback(redactor):
    line = one_json(emit(JsonFormatter(redactor), "send failed for %s", "chunk 5", exc=ValueError("短信 bad")))
    assert line["level"] == "ERROR" and line["message"] == "send failed for chunk 5"
    assert line["exc"].startswith("Traceback") and "ValueError: 短信 bad" in line["exc"]


def test_context_ends_with_its_block(redactor):
    with log_context(job_id=1, chunk_id=2):
        with log_context(chunk_id=3, account=None):
            inner = one_json(emit(JsonFormatter(redactor), "inner"))
        outer = one_json(emit(JsonFormatter(redactor), "outer"))
    after = one_json(emit(JsonFormatter(redactor), "after"))
    assert (inner["job_id"], inner["chunk_id"], "account" in inner) == (1, 3, False)
    assert (outer["job_id"], outer["chunk_id"]) == (1, 2)
    assert "job_id" not in after and "chunk_id" not in after


@pytest.mark.parametrize("kind", list(SECRETS))
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_every_secret_is_redacted(redactor, kind, fmt):
    # given
    value = SECRETS[kind]
    celery_text = ColorFormatter("%(levelname)s %(message)s", use_color=False)
    formatter = JsonFormatter(redactor) if fmt == "json" else RedactingFormatter(celery_text, redactor)
    # when: in the message, in an argument, percent-encoded in a URL, in a traceback, in a context field
    with log_context(account=f"acct {value}"):
        texts = [emit(formatter, f"request body secret={value}"),
                 emit(formatter, "GET %s", f"/sms.aspx?action=send&password={quote_plus(value)}"),
                 emit(formatter, "boom", exc=RuntimeError(f"answer echoed {value}"))]
    # then
    for text in texts:
        assert value not in text and quote_plus(value) not in text
        assert "***" in text
        if fmt == "json":
            one_json(text)  # still one valid JSON object


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_callback_path_tokens_are_redacted_even_unknown_ones(redactor, fmt):
    formatter = JsonFormatter(redactor) if fmt == "json" else RedactingFormatter(None, redactor)
    text = emit(formatter, "POST /callbacks/emay_voice/voice/guessed-token-1/report 401; "
                           "POST /callbacks/ihuyi_mms/mms/another?x=1 200")
    assert "guessed-token-1" not in text and "another" not in text
    assert "/callbacks/emay_voice/voice/***/report" in text and "/callbacks/ihuyi_mms/mms/***?x=1" in text


def test_ordinary_text_is_left_alone(redactor):
    text = "chunk 12 of job 3: done sent 500 to voice (EUCP-EMY-LOGS), 13800000000"
    assert redactor(text) == text


def test_use_format_switches_celery_handlers_and_never_wraps_twice():
    # given: a logger as Celery sets it up
    logger = logging.getLogger("msgrelay.test_logs.celery")
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(ColorFormatter("[%(levelname)s] %(message)s", use_color=False))
    logger.addHandler(handler)
    try:
        # when / then
        use_format(logger, "text")
        use_format(logger, "text")
        assert isinstance(handler.formatter, RedactingFormatter)
        assert isinstance(handler.formatter.inner, ColorFormatter)
        use_format(logger, "json")
        assert isinstance(handler.formatter, JsonFormatter)
    finally:
        logger.removeHandler(handler)


UVICORN_SETUPS = {  # how the API process sets up its logs: uvicorn's log_config, or install() at start-up
    "log_config": """\
        import uvicorn.config
        from msgrelay.logs import uvicorn_log_config
        uvicorn.config.Config("api.app:app", log_level="info", log_config=uvicorn_log_config()).configure_logging()
        """,
    "install": """\
        import uvicorn.config
        from msgrelay.logs import install
        uvicorn.config.Config("api.app:app", log_level="info").configure_logging()
        install()
        """,
}
UVICORN_LINES = """\
    import logging
    logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "POST",
                                             "/callbacks/emay_voice/voice/tok-123/report", "1.1", 200)
    logging.getLogger("msgrelay.api").warning("key api-proc-secret-1 用户")
    """


def run_api_logging(setup: str, log_format: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """A process that sets up its logs as the API does, then logs as uvicorn and msgrelay do."""
    accounts = tmp_path / "accounts.toml"
    accounts.write_text('[accounts.voice]\nprovider = "emay_voice"\nbase_url = "http://127.0.0.1:9"\n'
                        'app_id = "EUCP-EMY-API"\nsecret_key = "api-proc-secret-1"\n', encoding="utf-8")
    script = textwrap.dedent(UVICORN_SETUPS[setup]) + textwrap.dedent(UVICORN_LINES)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "MSGRELAY_LOG_FORMAT": log_format,
                               "MSGRELAY_ACCOUNTS_FILE": str(accounts)})


@pytest.mark.parametrize("setup", list(UVICORN_SETUPS))
def test_api_process_logs_json_for_uvicorn_and_msgrelay(setup, tmp_path):
    # when
    out = run_api_logging(setup, "json", tmp_path)
    # then
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in (out.stdout + out.stderr).splitlines()]
    assert {line["logger"] for line in lines} == {"uvicorn.error", "uvicorn.access", "msgrelay.api"}
    assert "api-proc-secret-1" not in out.stderr + out.stdout and "tok-123" not in out.stdout
    assert any(line["message"] == "key *** 用户" for line in lines)


def test_api_text_logs_look_as_before_but_redacted(tmp_path):
    out = run_api_logging("log_config", "text", tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines()[0] == "INFO:     Started server process"
    assert out.stdout.strip() == 'INFO:     127.0.0.1:5 - "POST /callbacks/emay_voice/voice/***/report HTTP/1.1" 200 OK'
    assert out.stderr.splitlines()[1] == "key *** 用户"  # as Python's last-resort handler wrote it, redacted


@pytest.mark.parametrize(("value", "expected"), [("json", "json"), ("text", "text"), (" JSON ", "json")])
def test_log_format_values(value, expected):
    assert Settings(log_format=value).log_format == expected


@pytest.mark.parametrize("value", ["xml", "", "jsonl", "1"])
def test_bad_log_format_names_the_variable_and_the_choices(value):
    with pytest.raises(ConfigError) as info:
        Settings(log_format=value)
    assert "MSGRELAY_LOG_FORMAT" in str(info.value) and "text, json" in str(info.value)


@pytest.mark.parametrize("argv", [
    [sys.executable, "-m", "msgrelay.cli", "worker"],
    [str(Path(sys.executable).with_name("celery")), "-A", "tasks", "worker"],
], ids=["msgrelay worker", "celery worker"])
def test_bad_log_format_stops_start_up(argv):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                         env={**os.environ, "MSGRELAY_LOG_FORMAT": "xml"})
    assert out.returncode == 2, out.stderr
    assert "error: config: MSGRELAY_LOG_FORMAT: must be one of text, json, not 'xml'" in out.stderr
    assert "Traceback" not in out.stderr


def test_process_redaction_follows_the_accounts_file(tmp_path):
    # given: a process redacting with its own accounts and settings
    accounts = tmp_path / "accounts.toml"
    account = '[accounts.voice]\nprovider = "emay_voice"\nbase_url = "http://127.0.0.1:9"\napp_id = "A"\n'
    accounts.write_text(account + 'secret_key = "first-secret-1"\n', encoding="utf-8")
    script = textwrap.dedent(f"""\
        from pathlib import Path
        from msgrelay.accounts import reload_accounts
        from msgrelay.logs import redact
        print(redact("a first-secret-1 b second-secret-2 c api-token-env-3"))
        Path({str(accounts)!r}).write_text({account!r} + 'secret_key = "second-secret-2"\\n', encoding="utf-8")
        reload_accounts()  # what a running process does when the file changes
        print(redact("a first-secret-1 b second-secret-2 c api-token-env-3"))
        """)
    # when
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False,
                         env={**os.environ, "MSGRELAY_ACCOUNTS_FILE": str(accounts),
                              "MSGRELAY_API_TOKEN": "api-token-env-3"})
    # then
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["a *** b second-secret-2 c ***", "a first-secret-1 b *** c ***"]
