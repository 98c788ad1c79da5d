"""Helpers shared by the tests: outside programs and subprocesses of the service."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, what: str) -> None:
    """Skip on a laptop that lacks `what`; fail under CI, where a missing part is a defect."""
    if condition:
        return
    message = f"{what} is not available"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: the CI script must provide it)")
    pytest.skip(message)


def require_program(name: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    require(path is not None, f"the program {name!r}")
    return path


def service_env(**overrides: str) -> dict[str, str]:
    """The environment of a fresh service process: embedded defaults in development mode (as
    under `make run`) plus `overrides`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "LOG_"))
    }
    env.update(
        {"DJANGO_SETTINGS_MODULE": "compliance.settings", "PYTHONPATH": str(ROOT), "DEBUG": "true"}
    )
    env.update(overrides)
    return env


def run_manage(
    *args: str, env: dict[str, str] | None = None, input: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env or service_env(),
        input=input,
        capture_output=True,
        timeout=timeout,
    )


def run_python(
    code: str, *, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def same_database_env(**overrides: str) -> dict[str, str]:
    """A subprocess environment pointing at the database the running test uses."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{db['NAME']}"
    else:
        port = f":{db['PORT']}" if db.get("PORT") else ""
        url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}{port}/{db['NAME']}"
    from django.conf import settings

    # The same hash key as the test process, so both find the same entries.
    overrides.setdefault("ADDRESS_HASH_KEY", settings.ADDRESS_HASH_KEY)
    return service_env(DATABASE_URL=url, **overrides)


def wait_until_the_feed_shows_every_change(timeout: float = 30) -> None:
    """The change feed hands out a change only once every older transaction in the database
    cluster has ended (suppression/sql.py, FEED_SQL), so another process's open transaction
    holds new changes back for a while. Wait, bounded, until the newest one is out."""
    import time

    from django.db import connection

    if connection.vendor != "postgresql":
        return  # SQLite serialises writers: the feed is never behind
    deadline = time.monotonic() + timeout
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(max(txid), 0) < pg_snapshot_xmin(pg_current_snapshot())"
                "::text::bigint FROM suppression_suppressionevent"
            )
            if cursor.fetchone()[0]:
                return
        if time.monotonic() > deadline:
            pytest.fail(f"an older transaction held the change feed back for {timeout}s")
        time.sleep(0.1)


# The brokers the Celery integration tests run against: Redis from CELERY_BROKER_URL (as the
# service itself is configured), RabbitMQ from CELERY_AMQP_URL.
BROKERS = ("redis", "rabbitmq")
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def broker_url(kind: str) -> str:
    """The URL of a running broker of `kind` ("redis" or "rabbitmq"); skips on a laptop without
    one, fails under CI."""
    if kind == "redis":
        url = os.environ.get("CELERY_BROKER_URL", "")
        require(url.startswith("redis://"), "a Redis broker (CELERY_BROKER_URL=redis://...)")
    elif kind == "rabbitmq":
        url = os.environ.get("CELERY_AMQP_URL", "") or DEFAULT_AMQP_URL
        require(url.startswith("amqp://"), "a RabbitMQ broker (CELERY_AMQP_URL=amqp://...)")
    else:
        raise ValueError(f"unknown broker {kind!r}: use one of {', '.join(BROKERS)}")
    from kombu import Connection

    with Connection(url, connect_timeout=3) as connection:
        try:
            connection.ensure_connection(max_retries=1)
            reachable = True
        except Exception:  # any failure to connect means "not available"
            reachable = False
        shown = connection.as_uri()  # the password masked
    require(reachable, f"the {kind} broker at {shown}")
    return url


def result_backend(broker: str) -> str:
    """Where a test reads task results: Redis itself, or RabbitMQ's reply queues."""
    return broker if broker.startswith("redis://") else "rpc://"


def celery_producer(broker: str, monkeypatch, *, backend: str | None = None):
    """A Celery app of the test's own that sends to `broker` (and reads results from
    `backend`). Celery prefers CELERY_BROKER_URL and CELERY_RESULT_BACKEND from the environment
    to what an app is given, so the test runs without them."""
    from celery import Celery

    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERY_RESULT_BACKEND", raising=False)
    # Not the current app: tasks the test process runs eagerly stay on the service's app.
    return Celery("producer", broker=broker, backend=backend, set_as_current=False)


def delete_queues(app, *names: str) -> None:
    """Remove a test's own queues from the broker (RabbitMQ keeps them until deleted)."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for name in names:
            channel.queue_delete(name)


def start_celery_worker(queues: str, env: dict[str, str]) -> subprocess.Popen:
    """A real Celery worker (solo pool, one process) consuming `queues` (comma-separated), its
    log on stdout; the caller terminates it (or kills it: kill_celery_worker) and reads the log
    with communicate(). It leads its own process group, so a kill takes all of it."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "compliance",
            "worker",
            "--pool",
            "solo",
            "--queues",
            queues,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def kill_celery_worker(worker: subprocess.Popen) -> str:
    """SIGKILL the worker's process group, as a crash or the OOM killer would: no warm shutdown,
    nothing handed back to the broker. Returns its log."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    output, _ = worker.communicate(timeout=30)
    return output
