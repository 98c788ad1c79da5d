"""deploy/gunicorn.conf.py: gunicorn accepts it with the shipped production environment, takes
the host's values from the environment, and refuses bad ones with the variable named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.deploy.shipped import ENV_EXAMPLE, GUNICORN_CONF, env_file, generated_secrets
from tests.support import ROOT

GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def _production_env(**overrides: str) -> dict[str, str]:
    """The example environment with its secrets filled in, and nothing from this shell."""
    env = {"PATH": "/usr/bin:/bin", **env_file(ENV_EXAMPLE), **generated_secrets()}
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def _gunicorn(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [GUNICORN, *args, "--config", str(GUNICORN_CONF), "compliance.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_config_passes_with_the_production_environment():
    result = _gunicorn("--check-config", env=_production_env())
    assert result.returncode == 0, result.stderr


def test_check_config_fails_on_a_bad_value_naming_the_variable():
    result = _gunicorn("--check-config", env=_production_env(WEB_THREADS="zero"))
    assert result.returncode != 0
    assert "WEB_THREADS must be a whole number of 1 or more, got 'zero'" in result.stderr


def test_check_config_fails_when_the_service_would_refuse_to_start():
    """--check-config loads the application, so the start-up checks of compliance/wsgi.py run."""
    result = _gunicorn(
        "--check-config", env=_production_env(UNSUBSCRIBE_BASE_URL="http://compliance.example.com")
    )
    assert result.returncode != 0
    assert "UNSUBSCRIBE_BASE_URL must be an https:// URL" in result.stderr


def _printed(env: dict[str, str]) -> dict[str, str]:
    result = _gunicorn("--print-config", env=env)
    assert result.returncode == 0, result.stderr
    settings = {}
    for line in result.stdout.splitlines():
        name, _, value = line.partition("=")
        settings[name.strip()] = value.strip()
    return settings


def test_the_host_values_come_from_the_environment():
    printed = _printed(
        _production_env(
            WEB_BIND="127.0.0.1:8001,unix:/run/compliance-web/web.sock",
            WEB_CONCURRENCY="3",
            WEB_THREADS="5",
            FORWARDED_ALLOW_IPS="10.0.0.10,10.0.1.0/24",
            WEB_ACCESS_LOG="-",
        )
    )
    assert printed["bind"] == "['127.0.0.1:8001', 'unix:/run/compliance-web/web.sock']"
    assert printed["workers"] == "3"
    assert printed["threads"] == "5"
    assert printed["worker_class"] == "gthread"
    assert printed["forwarded_allow_ips"] == "['10.0.0.10', '10.0.1.0/24']"
    assert printed["accesslog"] == "-"


def test_without_host_values_it_serves_threads_on_every_core_with_long_keep_alive():
    env = _production_env(WEB_BIND=None, FORWARDED_ALLOW_IPS=None)
    printed = _printed(env)
    cores = len(os.sched_getaffinity(0))
    assert printed["bind"] == "['0.0.0.0:8000']"
    assert printed["workers"] == str(2 * cores)
    assert printed["threads"] == "2"
    # Longer than a load balancer's usual 60 s idle timeout: the balancer closes idle
    # connections, never gunicorn under a request the balancer is sending.
    assert int(printed["keepalive"]) > 60
    assert printed["forwarded_allow_ips"] == "['127.0.0.1', '::1']"
    assert printed["accesslog"] == "None"
    assert int(printed["max_requests"]) > 0 and int(printed["max_requests_jitter"]) > 0
