"""A bad accounts.toml stops every process at start-up, naming file, account and field, and showing no secret.

Each entry point runs as a real process, with its own session so that one that wrongly starts is killed whole."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main

from msgrelay.cli import app
from msgrelay.cli.processes import free_port

CELERY = str(Path(sys.executable).with_name("celery"))
REFUSE_WITHIN_S = 45  # a refusal takes a few seconds (imports); a process that starts instead runs into this
# Commands that never read the accounts file: schema, read-only views and job controls (an operator must be able
# to pause or cancel while fixing the file), the counters check (`doctor`), and the demo, which writes its own file.
NO_ACCOUNTS = {"db upgrade", "demo", "job", "jobs", "inbound", "templates", "pause", "resume", "cancel", "doctor",
               "webhooks deliveries", "webhooks retry", "webhooks test", "suppress remove", "suppress list"}


@dataclass(frozen=True)
class BadFile:
    """An accounts file whose second account has an unknown field, and every secret value written in it."""

    path: Path
    secrets: tuple[str, ...]
    where: str  # what the refusal must say


@pytest.fixture
def bad(tmp_path: Path) -> BadFile:
    """A good `sms` account, then a `voice` account with an unknown field `colour`."""
    values = tuple(f"{name}-{secrets.token_hex(8)}" for name in ("pw", "app", "sk", "tok", "colour"))
    path = tmp_path / "conf" / "accounts.toml"
    path.parent.mkdir()
    path.write_text(f"""[accounts.sms]
provider = "qyxs_sms"
base_url = "http://127.0.0.1:9"
userid = "12"
account = "user"
password = "{values[0]}"

[accounts.voice]
provider = "emay_voice"
base_url = "http://127.0.0.1:9"
app_id = "{values[1]}"
secret_key = "{values[2]}"
callback_token = "{values[3]}"
colour = "{values[4]}"
""", encoding="utf-8")
    return BadFile(path, values, f"{path}: account 'voice': field 'colour'")


def _run(argv: list[str], bad: BadFile, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `argv` on the bad file with a dead broker (nothing of the test machine's is touched if it starts)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGRELAY_")}
    env.update(MSGRELAY_ACCOUNTS_FILE=str(bad.path), MSGRELAY_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
               MSGRELAY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0", COLUMNS="80")
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=REFUSE_WITHIN_S)
    except subprocess.TimeoutExpired:
        out, err = "", f"still running after {REFUSE_WITHIN_S}s: it started on a bad file"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # one that started, and anything it started
        except ProcessLookupError:
            pass
        proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _msgrelay(*args: str) -> list[str]:
    return [sys.executable, "-m", "msgrelay.cli", *args]


ENTRY_POINTS = {
    "msgrelay worker": lambda: _msgrelay("worker"),
    "msgrelay beat": lambda: _msgrelay("beat"),
    "msgrelay api": lambda: _msgrelay("api", "--port", str(free_port())),
    "msgrelay flower": lambda: _msgrelay("flower", "--port", str(free_port())),
    "msgrelay simulate": lambda: _msgrelay("simulate", "--port", str(free_port())),
    "msgrelay up": lambda: _msgrelay("up", "--api-port", str(free_port()), "--flower-port", str(free_port())),
    "msgrelay send": lambda: _msgrelay("send", "voice", "notify", "--to", "13800000000", "--content", "hi"),
    "msgrelay balance": lambda: _msgrelay("balance"),
    "msgrelay check-content": lambda: _msgrelay("check-content", "sms", "hello"),
    "msgrelay template create": lambda: _msgrelay("template", "create", "voice", "--title", "t", "--sign-name", "【x】"),
    "celery -A tasks worker": lambda: [CELERY, "-A", "tasks", "worker", "-c", "1"],
    "celery -A tasks beat": lambda: [CELERY, "-A", "tasks", "beat"],
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_refuses_to_start_on_a_bad_accounts_file(entry, bad, tmp_path):
    # given an accounts file with an unknown field
    # when
    out = _run(ENTRY_POINTS[entry](), bad, tmp_path)
    # then it stops, says where, and shows no secret of the file
    assert out.returncode not in (0, None), out.stderr[-2000:]
    assert bad.where in out.stderr, out.stderr[-2000:]
    shown = out.stdout + out.stderr
    assert not [s for s in bad.secrets if s in shown]


@pytest.mark.parametrize("entry", ["msgrelay api", "celery -A tasks worker"])
def test_a_file_that_is_not_utf8_is_refused_too(entry, bad, tmp_path):
    # given a file with a byte that is not UTF-8 in a secret
    bad.path.write_bytes(bad.path.read_bytes().replace(b'secret_key = "', b'secret_key = "\xff'))
    # when
    out = _run(ENTRY_POINTS[entry](), bad, tmp_path)
    # then
    assert out.returncode not in (0, None), out.stderr[-2000:]
    assert f"{bad.path}: not UTF-8 text (byte " in out.stderr, out.stderr[-2000:]
    assert not [s for s in bad.secrets if s in out.stdout + out.stderr]


def test_db_upgrade_needs_no_accounts(bad, tmp_path):
    # given the same bad file; when the schema is upgraded; then the file is not read
    out = _run(_msgrelay("db", "upgrade"), bad, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "x.db").exists()


def test_help_still_works_on_a_bad_file(bad, tmp_path):
    out = _run(_msgrelay("worker", "--help"), bad, tmp_path)
    assert out.returncode == 0 and "--queues" in out.stdout


def _leaf_commands(cmd, path: str = ""):
    """(`name …`, click command) of every runnable msgrelay command."""
    if hasattr(cmd, "list_commands"):  # a group (typer vendors its own click classes)
        ctx = cmd.make_context("msgrelay", [], resilient_parsing=True)
        for name in cmd.list_commands(ctx):
            yield from _leaf_commands(cmd.get_command(ctx, name), f"{path} {name}".strip())
    else:
        yield path, cmd


def test_every_command_either_checks_the_accounts_or_never_reads_them():
    # a new command must choose: @needs_accounts, or a place in NO_ACCOUNTS with a reason
    commands = dict(_leaf_commands(typer.main.get_command(app)))
    checked = {name for name, cmd in commands.items() if getattr(cmd.callback, "needs_accounts", False)}
    assert NO_ACCOUNTS <= set(commands)
    assert checked | NO_ACCOUNTS == set(commands) and not checked & NO_ACCOUNTS
    assert {"worker", "beat", "api", "flower", "simulate", "up", "send", "balance"} <= checked
