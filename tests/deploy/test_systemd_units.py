"""The systemd units in deploy/systemd pass systemd's own checks and say what docs/deploy.md says.

`systemd-analyze verify` needs no running systemd (CI's containers have none as PID 1): it loads
the units as the manager would and reports unknown keys, values it cannot parse, dependencies
it cannot find and ExecStart programs that do not exist, as warnings on stderr. Run with
`--root`, it looks for those programs and for the units a unit depends on (sysinit.target,
network-online.target, ...) under a root the test builds: this machine's own units, the
shipped units in /etc/systemd/system, and in /opt/compliance/.venv/bin an executable for each
program the virtualenv running the tests really has. So a unit that names a program the project
does not install fails, and so does any warning at all. What it cannot check offline is the
sandbox at run time; test_units_start.py starts each unit's command line for real instead.

Debian's `systemd` package provides systemd-analyze.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.shipped import (
    APP_DIR,
    ENV_FILE,
    STATE_DIR,
    UNITS,
    VENV_BIN,
    directive,
)
from tests.support import require_program

SHIPPED = sorted(p.name for p in UNITS.iterdir())
SERVICES = [n for n in SHIPPED if n.endswith(".service")]
# What an operator enables: the template with an instance.
ENABLED = [n.replace("@.", "@optouts.") for n in SHIPPED]


def _host_units() -> Path:
    for candidate in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if candidate.is_dir():
            return candidate
    pytest.fail("systemd-analyze is installed but this machine has no system unit directory")


def _exec_programs(units: Path) -> set[str]:
    programs = set()
    for path in units.iterdir():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip().startswith("Exec") and value.strip():
                programs.add(value.split()[0].lstrip("-@+!:"))
    return programs


def _root(tmp_path: Path, units: Path = UNITS) -> Path:
    """A file-system root holding the host's units, ours, and the programs they may run."""
    root = tmp_path / "root"
    shutil.copytree(_host_units(), root / "usr/lib/systemd/system", symlinks=True)
    shutil.copytree(units, root / "etc/systemd/system")
    venv = Path(sys.executable).parent
    for program in _exec_programs(units):
        if program.startswith(VENV_BIN + "/"):
            exists = (venv / program.removeprefix(VENV_BIN + "/")).exists()
        else:
            exists = os.access(program, os.X_OK)
        if exists:
            stub = root / program.lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\n")
            stub.chmod(0o755)
    return root


def _verify(root: Path, *names: str) -> subprocess.CompletedProcess:
    analyze = require_program("systemd-analyze")
    return subprocess.run(
        [analyze, "verify", f"--root={root}", "--man=no", *names],
        cwd=root / "etc/systemd/system",
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_unit_passes_systemd_analyze_verify(tmp_path):
    result = _verify(_root(tmp_path), *ENABLED)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize(
    "unit, line, replacement, complaint",
    [
        ("compliance-web.service", "Restart=on-failure", "Restart=sometimes", "sometimes"),
        ("compliance-web.service", "KillMode=mixed", "KilMode=mixed", "Unknown key"),
        (
            "compliance-worker@.service",
            "/opt/compliance/.venv/bin/celery ",
            "/opt/compliance/.venv/bin/celeryd ",
            "is not executable",
        ),
        ("compliance.target", "[Unit]\n", "[Unit]\nRequires=no-such.service\n", "no-such"),
    ],
)
def test_verify_refuses_a_broken_unit(tmp_path, unit, line, replacement, complaint):
    """The check above can fail: each of these breakages makes it report the unit."""
    units = tmp_path / "units"
    shutil.copytree(UNITS, units)
    text = (units / unit).read_text()
    assert line in text
    (units / unit).write_text(text.replace(line, replacement, 1))
    result = _verify(_root(tmp_path, units), *ENABLED)
    output = result.stdout + result.stderr
    assert complaint in output
    assert unit.replace("@.", "@optouts.") in output


@pytest.mark.parametrize("unit", [n.replace("@.", "@optouts.") for n in SERVICES])
def test_every_service_is_sandboxed(tmp_path, unit):
    """systemd's own security review rates each service "OK": exposure under 2.0 of 10."""
    analyze = require_program("systemd-analyze")
    root = _root(tmp_path)
    result = subprocess.run(
        [analyze, "security", "--offline=yes", f"--root={root}", "--threshold=20", unit],
        cwd=root / "etc/systemd/system",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout.splitlines()[-1]


@pytest.mark.parametrize("unit", SERVICES)
def test_every_service_runs_as_the_service_user_with_the_shared_environment(unit):
    assert directive(unit, "User") == ["compliance"]
    assert directive(unit, "WorkingDirectory") == [APP_DIR]
    assert directive(unit, "EnvironmentFile")[0] == ENV_FILE
    assert directive(unit, "NoNewPrivileges") == ["yes"]
    assert directive(unit, "ProtectSystem") == ["strict"]
    assert directive(unit, "PrivateTmp") == ["yes"]


@pytest.mark.parametrize("unit", SERVICES)
def test_services_write_only_to_the_state_directory(unit):
    """ProtectSystem=strict leaves the file system read-only: a path a command line names is
    code (read) or in /var/lib/compliance, which StateDirectory= makes writable."""
    (command,) = directive(unit, "ExecStart")
    paths = [w for w in command.split()[1:] if w.startswith("/")]
    assert all(p.startswith((APP_DIR + "/", STATE_DIR + "/")) for p in paths), paths
    if any(p.startswith(STATE_DIR + "/") for p in paths):
        assert directive(unit, "StateDirectory") == ["compliance"]


@pytest.mark.parametrize("unit", [n for n in SERVICES if n != "compliance-spool-drain.service"])
def test_long_running_services_restart_and_belong_to_the_target(unit):
    assert directive(unit, "Restart") == ["on-failure"]
    assert directive(unit, "PartOf") == ["compliance.target"]
    assert directive(unit, "WantedBy") == ["compliance.target"]
    assert directive("compliance.target", "WantedBy") == ["multi-user.target"]


def test_the_timer_starts_the_spool_drain_and_belongs_to_the_target():
    assert directive("compliance-spool-drain.service", "Type") == ["oneshot"]
    assert directive("compliance-spool-drain.timer", "WantedBy") == ["compliance.target"]
    (command,) = directive("compliance-spool-drain.service", "ExecStart")
    assert command.endswith("manage.py drain_unsubscribe_spool")


def _seconds(value: str) -> float:
    assert value.isdigit(), f"give TimeoutStopSec in plain seconds, not {value!r}"
    return float(value)


def test_celery_workers_get_a_warm_shutdown_long_enough_for_a_webhook_drain():
    from django.conf import settings

    unit = "compliance-worker@.service"
    # SIGTERM to Celery's main process only: it stops its pool after the running tasks.
    assert directive(unit, "KillMode") == ["mixed"]
    longest_task = settings.WEBHOOK_RUN_SECONDS + settings.WEBHOOK_TIMEOUT_SECONDS
    assert _seconds(directive(unit, "TimeoutStopSec")[0]) > 2 * longest_task
    assert settings.CELERY_TASK_ACKS_LATE  # a task cut off after that is delivered again


def test_web_stop_waits_longer_than_gunicorns_graceful_timeout():
    import runpy

    graceful = runpy.run_path(str(UNITS.parent / "gunicorn.conf.py"))["graceful_timeout"]
    unit = "compliance-web.service"
    assert directive(unit, "KillMode") == ["mixed"]
    assert _seconds(directive(unit, "TimeoutStopSec")[0]) > graceful


def test_beat_is_one_unit_not_a_template():
    """Exactly one beat per deployment: nothing ships a way to start several on a host."""
    assert "compliance-beat.service" in SHIPPED
    assert not any(n.startswith("compliance-beat@") for n in SHIPPED)
    (command,) = directive("compliance-beat.service", "ExecStart")
    assert f"--schedule {STATE_DIR}/" in command
