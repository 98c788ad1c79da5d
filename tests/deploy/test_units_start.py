"""Each unit's own command line starts the real process here, in production mode.

The command line is read from the unit file and expanded as systemd does (specifiers, then
environment variables); the environment is what the unit gives its process: the shipped example
with its secrets filled in and this machine's database and broker. Only the production paths
are mapped onto this checkout (tests/deploy/shipped.py, `local`); the policy server's fixed port
is the one other change. Each process is stopped the way the unit stops it (SIGTERM to the main
process) and must exit cleanly.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gunicorn.config import KNOWN_SETTINGS

from tests.deploy.shipped import (
    ENV_EXAMPLE,
    ENV_FILE,
    command_line,
    directive,
    env_file,
    generated_secrets,
    local,
    template_file,
    unit_environment,
)
from tests.support import require

pytestmark = pytest.mark.integration

PUBLIC_HOST = "compliance.example.com"
gunicorn_settings = {s.name for s in KNOWN_SETTINGS}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}{port}/{db['NAME']}"


@pytest.fixture
def operator_env(db, tmp_path) -> Path:
    """/etc/compliance/compliance.env as an operator fills it in for this machine."""
    broker = os.environ.get("CELERY_BROKER_URL", "")
    require(broker.startswith(("redis://", "amqp://")), "a Celery broker (CELERY_BROKER_URL)")
    values = {
        **env_file(ENV_EXAMPLE),
        **generated_secrets(),
        "DATABASE_URL": _database_url(),
        "REPLICA_DATABASE_URLS": "",
        "CELERY_BROKER_URL": broker,
        "CACHE_URL": "locmemcache://",
        # This test is the load balancer.
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "WEB_BIND": f"127.0.0.1:{_free_port()}",
        "WEB_CONCURRENCY": "2",
    }
    path = tmp_path / "compliance.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


class Started:
    """A unit's process, its output collected as it comes."""

    def __init__(self, command: list[str], *, env: dict[str, str], cwd: str) -> None:
        self.command = command
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"{self.command[0]} exited {self.process.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} within {timeout}s:\n{self.output[-4000:]}")
            time.sleep(0.1)

    def stop(self, timeout: float) -> int:
        """SIGTERM to the main process, as KillMode=mixed and the default both do."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._reader.join(5)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@contextlib.contextmanager
def started(
    unit: str, operator_env: Path, state_dir: Path, *, files=None, replace=None
) -> Iterator[Started]:
    env = unit_environment(
        unit, files={ENV_FILE: operator_env, **(files or {})}, state_dir=state_dir
    )
    command = [local(word, state_dir) for word in command_line(unit, env)]
    for old, new in (replace or {}).items():
        command = [new if word == old else word for word in command]
    (cwd,) = directive(template_file(unit), "WorkingDirectory")
    state_dir.mkdir(exist_ok=True)
    process = Started(command, env=env, cwd=local(cwd, state_dir))
    try:
        yield process
    finally:
        # What systemd does last in any case: nothing of the unit outlives it.
        process.kill_group()


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": PUBLIC_HOST, **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _wait_healthy(server: Started, port: int, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"gunicorn exited {server.process.returncode}:\n{server.output}")
        with contextlib.suppress(OSError):
            status, _, body = _get(port, "/healthz")
            if status == 200:
                return json.loads(body)
        time.sleep(0.2)
    pytest.fail(f"/healthz did not answer 200 within {timeout}s:\n{server.output[-4000:]}")


def test_the_web_unit_serves_behind_the_load_balancer(operator_env, tmp_path):
    port = int(env_file(operator_env)["WEB_BIND"].rpartition(":")[2])
    with started("compliance-web.service", operator_env, tmp_path / "state") as web:
        health = _wait_healthy(web, port)
        assert health["database"] == "ok"
        assert health["broker"] == "ok"
        if "control_socket" in gunicorn_settings:  # gunicorn 25.1 and later
            assert (tmp_path / "state/run/compliance-web/gunicorn.ctl").is_socket()
        # Plain HTTP is redirected to HTTPS, except the balancer's probe above...
        status, headers, _ = _get(port, "/api/v1/suppressions/check?address=a@example.com")
        assert status == 301
        assert headers["Location"].startswith(f"https://{PUBLIC_HOST}/")
        # ...and a request the balancer received over HTTPS is served.
        status, _, body = _get(
            port, "/api/v1/suppressions/check?address=a@example.com", {"X-Forwarded-Proto": "https"}
        )
        assert status == 401, body
        stop_timeout = float(directive("compliance-web.service", "TimeoutStopSec")[0])
        assert web.stop(timeout=stop_timeout) == 0, web.output


@pytest.mark.parametrize(
    "instance, worker_file, queues",
    [
        ("optouts", None, ["optouts"]),
        (
            "all",
            "WORKER_QUEUES=celery,optouts\nWORKER_OPTIONS=--concurrency 1\n",
            ["celery", "optouts"],
        ),
    ],
)
def test_a_worker_instance_consumes_its_queues(
    operator_env, tmp_path, instance, worker_file, queues
):
    files = {}
    if worker_file is not None:
        files[f"/etc/compliance/worker-{instance}.env"] = tmp_path / f"worker-{instance}.env"
        files[f"/etc/compliance/worker-{instance}.env"].write_text(worker_file)
    unit = f"compliance-worker@{instance}.service"
    with started(unit, operator_env, tmp_path / "state", files=files) as worker:
        worker.wait_for(f"{instance}@{socket.gethostname()} ready.")
        consumed = re.findall(r"\.> (\S+)\s+exchange=", worker.output)
        assert sorted(consumed) == queues, worker.output
        if worker_file is not None:
            assert "concurrency: 1 (prefork)" in worker.output
        assert worker.stop(timeout=60) == 0, worker.output


def test_the_beat_unit_keeps_its_schedule_in_the_state_directory(operator_env, tmp_path):
    state = tmp_path / "state"
    # Beat has set its schedule up once the file is written: with the dbm Python falls back to
    # (dbm.dumb) that is when its index (.dir) appears. Stopping it earlier, while it is still
    # opening the file, is a race in Celery itself, not the unit's.
    written = (
        "celerybeat-schedule.dir"
        if importlib.util.find_spec("_gdbm") is None and importlib.util.find_spec("_dbm") is None
        else "celerybeat-schedule"
    )
    with started("compliance-beat.service", operator_env, state) as beat:
        beat.wait_for("beat: Starting...")
        deadline = time.monotonic() + 30
        while not list(state.glob(f"{written}*")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(state.glob(f"{written}*")), beat.output
        assert beat.stop(timeout=30) == 0, beat.output


def test_the_policy_unit_answers_postfix(operator_env, tmp_path):
    port = _free_port()
    state = tmp_path / "state"
    unit = "compliance-policy.service"
    with started(unit, operator_env, state, replace={"10040": str(port)}) as policy:
        policy.wait_for(f"listening on 127.0.0.1:{port}")
        request = (
            b"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
            b"client_address=192.0.2.1\nsender=news@example.com\n"
            b"recipient=pat@example.org\n\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(request)
            answer = b""
            while not answer.endswith(b"\n\n"):
                chunk = conn.recv(4096)
                assert chunk, f"connection closed after {answer!r}"
                answer += chunk
        assert answer == b"action=DUNNO\n\n", policy.output
        assert policy.stop(timeout=30) == 0, policy.output


def test_the_spool_drain_unit_runs_to_completion(operator_env, tmp_path):
    unit = "compliance-spool-drain.service"
    with started(unit, operator_env, tmp_path / "state") as drain:
        assert drain.process.wait(60) == 0, drain.output
        drain._reader.join(5)
        assert "applied 0 spooled opt-out(s); 0 left" in drain.output
