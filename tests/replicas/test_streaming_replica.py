"""The service against a real PostgreSQL primary and a real streaming replica (tests/pg_cluster.py):
relay reads go to the replica while it keeps up, to the primary once it lags or is down, and
writes and the reads that must see them always go to the primary.

The replica is made to fall behind by pausing its replay (`pg_wal_replay_pause()`): it still
receives the primary's WAL but applies none of it, so an entry written on the primary is not on
the replica, and an answer that misses it can only have come from the replica.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests import pg_cluster
from tests.support import ROOT, require, run_manage, service_env

pytestmark = pytest.mark.integration

DB = "compliance"
# Small, so that a paused replica passes it within the test; the checks before that happen
# well within it.
MAX_LAG = 3.0
PERMISSIONS = "suppression:read,suppression:write,unsubscribe:mint,consent:read"


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


@dataclass
class Service:
    """A running `manage.py runserver` of the service, and its log."""

    port: int
    process: subprocess.Popen
    log_path: Path
    key: str = ""

    def request(self, method: str, path: str, body=None, *, form=None) -> Answer:
        headers = {"Authorization": f"Bearer {self.key}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = "&".join(f"{k}={v}" for k, v in form.items()).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Answer(response.status, response.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read())

    def check(self, address: str) -> bool:
        answer = self.request(
            "GET", f"/api/v1/suppressions/check?stream=marketing&address={address}"
        )
        assert answer.status == 200, answer.text
        return answer.json()["suppressed"]

    def batch_suppressed(self, addresses: list[str]) -> list[str]:
        answer = self.request(
            "POST", "/api/v1/suppressions/check", {"stream": "marketing", "addresses": addresses}
        )
        assert answer.status == 200, answer.text
        return [item["address"] for item in answer.json()["suppressed"]]

    def denied(self, addresses: list[str]) -> list[str]:
        answer = self.request(
            "POST", "/api/v1/send-decisions", {"stream": "transactional", "addresses": addresses}
        )
        assert answer.status == 200, answer.text
        return [item["address"] for item in answer.json()["denied"]]

    def suppress(self, address: str) -> None:
        answer = self.request(
            "POST",
            "/api/v1/suppressions/",
            {"address": address, "reason": "hard_bounce", "scope": "global"},
        )
        assert answer.status == 201, answer.text

    def changes(self, since: str) -> tuple[list[str], str]:
        answer = self.request("GET", f"/api/v1/suppressions/changes?since={since}")
        assert answer.status == 200, answer.text
        body = answer.json()
        return [change["cursor"] for change in body["changes"]], body["next"]

    def healthz(self) -> Answer:
        return self.request("GET", "/healthz")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_service(env: dict[str, str], log_path: Path) -> Iterator[Service]:
    port = pg_cluster.free_port()
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    service = Service(port, process, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the service exited {process.returncode}:\n{service.log()}")
            with contextlib.suppress(OSError):
                if service.healthz().status == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"the service did not answer within 60 s:\n{service.log()}")
            time.sleep(0.2)
        yield service
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@dataclass
class Deployment:
    cluster: pg_cluster.Cluster
    # The service with the replica (REPLICA_MAX_LAG_SECONDS=MAX_LAG), and one on the primary only.
    with_replica: Service
    primary_only: Service
    replica_env: dict[str, str]

    def on(self, server: pg_cluster.Server, sql: str, params=()) -> list[tuple]:
        with self.cluster.connect(server, DB) as conn:
            return conn.execute(sql, params).fetchall()

    def listed_on(self, server: pg_cluster.Server, address: str) -> bool:
        rows = self.on(
            server, "SELECT 1 FROM suppression_suppression WHERE address = %s", (address,)
        )
        return bool(rows)

    def fall_behind(self) -> float:
        """A fresh commit replayed, then replay paused: the replica's lag counts from now.
        Returns the monotonic time of that commit."""
        self.cluster.mark()
        marked = time.monotonic()
        self.cluster.wait_replayed(0)
        self.cluster.pause_replay(0)
        return marked

    def wait_until_lag_passes(self, marked: float) -> None:
        time.sleep(max(0.0, marked + MAX_LAG + 0.5 - time.monotonic()))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    missing = pg_cluster.missing_programs()
    require(not missing, f"a private PostgreSQL cluster ({', '.join(missing)})")
    logs = tmp_path_factory.mktemp("replica-service")
    with pg_cluster.pg_cluster(replicas=1) as cluster:
        cluster.create_database(DB)
        primary_env = service_env(DATABASE_URL=cluster.url(DB))
        migrated = run_manage("migrate", "--noinput", env=primary_env, timeout=300)
        assert migrated.returncode == 0, migrated.stderr.decode()
        issued = run_manage(
            "create_api_key", "relay", "--permissions", PERMISSIONS, env=primary_env
        )
        assert issued.returncode == 0, issued.stderr.decode()
        key = issued.stdout.decode().strip().splitlines()[-1]
        replica_env = service_env(
            DATABASE_URL=cluster.url(DB),
            REPLICA_DATABASE_URLS=cluster.replica_url(0, DB),
            REPLICA_MAX_LAG_SECONDS=str(MAX_LAG),
            # Measured before every relay read, so each test sees the replica as it is now.
            REPLICA_RECHECK_SECONDS="0",
        )
        cluster.wait_replayed(0)
        with (
            running_service(replica_env, logs / "with-replica.log") as with_replica,
            running_service(primary_env, logs / "primary-only.log") as primary_only,
        ):
            with_replica.key = primary_only.key = key
            yield Deployment(cluster, with_replica, primary_only, replica_env)


@pytest.fixture
def service(deployment) -> Iterator[Deployment]:
    """The deployment, its replica up, replaying and caught up again after the test."""
    yield deployment
    cluster = deployment.cluster
    try:
        cluster.resume_replay(0)
    except psycopg.OperationalError:  # the test stopped it
        cluster.start_replica(0)
    cluster.wait_replayed(0)


def test_relay_reads_use_the_replica_until_its_lag_passes_the_bound(service):
    marked = service.fall_behind()
    service.with_replica.suppress("lagging@example.com")  # a write: on the primary
    assert service.listed_on(service.cluster.primary, "lagging@example.com")
    assert not service.listed_on(service.cluster.replicas[0], "lagging@example.com")

    # Within the bound every relay read answers from the replica: the entry is not there yet.
    web = service.with_replica
    assert web.check("lagging@example.com") is False
    assert web.batch_suppressed(["lagging@example.com", "other@example.com"]) == []
    assert web.denied(["lagging@example.com"]) == []
    assert time.monotonic() - marked < MAX_LAG, "too slow to ask within the lag bound"

    # Past it, the same reads answer from the primary.
    service.wait_until_lag_passes(marked)
    assert web.check("lagging@example.com") is True
    assert web.batch_suppressed(["lagging@example.com", "other@example.com"]) == [
        "lagging@example.com"
    ]
    assert web.denied(["lagging@example.com"]) == ["lagging@example.com"]
    health = web.healthz()
    assert health.status == 200
    [replica] = health.json()["replicas"]
    assert replica["alias"] == "replica_0"
    assert replica["ok"] is False
    assert replica["lag_seconds"] > MAX_LAG
    assert "read replica replica_0 skipped" in web.log()

    # Caught up again, the replica serves (and has the entry).
    service.cluster.resume_replay(0)
    service.cluster.wait_replayed(0)
    assert web.healthz().json()["replicas"][0]["ok"] is True
    assert web.check("lagging@example.com") is True
    assert "read replica replica_0 serves again" in web.log()


def test_an_idle_primary_does_not_make_the_replica_look_behind(service):
    service.cluster.mark()
    service.cluster.wait_replayed(0)
    time.sleep(MAX_LAG + 0.5)  # the last commit is older than the bound, and nothing is new
    body = service.with_replica.healthz().json()
    assert body["replicas"] == [{"alias": "replica_0", "ok": True, "lag_seconds": 0.0}]
    assert {k: body[k] for k in ("status", "database", "broker")} == {
        "status": "ok",
        "database": "ok",
        "broker": "eager",
    }
    # Once something is written that it has not replayed, the old commit's age is its lag.
    service.cluster.pause_replay(0)
    service.cluster.mark()
    service.cluster.wait_received(0)
    [replica] = service.with_replica.healthz().json()["replicas"]
    assert replica["ok"] is False and replica["lag_seconds"] > MAX_LAG


def test_writes_and_reads_of_ones_own_writes_use_the_primary(service):
    service.fall_behind()
    web = service.with_replica
    link = web.request(
        "POST",
        "/api/v1/unsubscribe-links",
        {"stream": "marketing", "recipient": "clicker@example.com"},
    )
    assert link.status == 200, link.text
    path = "/u/" + link.json()["url"].rsplit("/u/", 1)[1]
    ticked = re.compile(r'name="receive" value="stream"\s+checked')
    assert ticked.search(web.request("GET", path).text)

    # The one-click POST writes on the primary (a write to the replica would fail outright).
    assert web.request("POST", path, form={"List-Unsubscribe": "One-Click"}).status == 200
    assert service.listed_on(service.cluster.primary, "clicker@example.com")
    assert not service.listed_on(service.cluster.replicas[0], "clicker@example.com")
    # The page after it reads the primary: the stream is no longer ticked.
    page = web.request("GET", path)
    assert page.status == 200
    assert ticked.search(page.text) is None

    # The admin, in a process of the same deployment: its login session is a write, and the
    # entry it opens exists only on the primary.
    [(entry_id,)] = service.on(
        service.cluster.primary,
        "SELECT id FROM suppression_suppression WHERE address = 'clicker@example.com'",
    )
    admin = run_manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; from django.test import Client;"
        "user = User.objects.create_superuser('boss', 'boss@example.com', 'x');"
        "client = Client(HTTP_HOST='localhost'); client.force_login(user);"
        f"r = client.get('/admin/suppression/suppression/{entry_id}/change/');"
        "print(r.status_code, b'clicker@example.com' in r.content)",
        env=service.replica_env,
    )
    assert admin.returncode == 0, admin.stderr.decode()
    assert admin.stdout.decode().split()[-2:] == ["200", "True"]


def _copy_event_sql(conn) -> str:
    """An INSERT that copies an event row as a new event of the running transaction."""
    columns = [
        name
        for (name,) in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'suppression_suppressionevent' "
            "AND column_name NOT IN ('id', 'txid') ORDER BY ordinal_position"
        ).fetchall()
    ]
    listed = ", ".join(columns)
    return (
        f"INSERT INTO suppression_suppressionevent ({listed}) "
        f"SELECT {listed} FROM suppression_suppressionevent WHERE id = %s RETURNING id"
    )


def test_the_change_feed_on_a_replica_never_skips_a_change(service):
    primary, replica = service.primary_only, service.with_replica
    service.cluster.mark()
    service.cluster.wait_replayed(0)
    # Everything so far, read to the end from the primary.
    start = "0.0"
    while True:
        seen, following = primary.changes(start)
        if not seen:
            break
        start = following

    # A replica behind the client's cursor answers nothing new and leaves the cursor alone.
    marked = service.fall_behind()
    primary.suppress("feed-a@example.com")
    deadline = time.monotonic() + 10
    while not (seen := primary.changes(start)[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(seen) == 1
    after_a = seen[0]
    assert replica.changes(after_a) == ([], after_a)
    assert replica.changes(start) == ([], start)  # the replica has not replayed the change
    assert time.monotonic() - marked < MAX_LAG, "too slow to ask within the lag bound"
    service.cluster.resume_replay(0)
    service.cluster.wait_replayed(0)
    assert replica.changes(start) == ([after_a], after_a)

    # A change of a transaction still running on the primary holds back later ones on the
    # replica as on the primary, and is handed out, in order, once it commits.
    [(a_event,)] = service.on(
        service.cluster.primary,
        "SELECT id FROM suppression_suppressionevent WHERE txid || '.' || id = %s",
        (after_a,),
    )
    with service.cluster.connect(service.cluster.primary, DB) as held:
        held.execute("BEGIN")
        [(late_event,)] = held.execute(_copy_event_sql(held), (a_event,)).fetchall()
        primary.suppress("feed-b@example.com")  # begins after, commits first
        service.cluster.wait_replayed(0)
        assert replica.changes(after_a) == ([], after_a)
        assert primary.changes(after_a) == ([], after_a)
        held.execute("COMMIT")
    service.cluster.wait_replayed(0)
    on_replica = replica.changes(after_a)
    assert on_replica == primary.changes(after_a)
    cursors, following = on_replica
    assert len(cursors) == 2
    assert cursors[0].endswith(f".{late_event}")  # the late change first: its txid is older
    assert following == cursors[1]


def _policy_answer(port: int, recipient: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            (
                "request=smtpd_access_policy\nprotocol_state=RCPT\n"
                f"sender=news@elsewhere.example\nrecipient={recipient}\n\n"
            ).encode()
        )
        answer = b""
        while not answer.endswith(b"\n\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.decode().strip()


def test_policy_server_and_mirror_export_read_the_replica(service, tmp_path):
    # A generous bound: these processes take a while to start, and must still find the
    # replica usable while it is paused.
    env = {**service.replica_env, "REPLICA_MAX_LAG_SECONDS": "600"}
    service.fall_behind()
    service.primary_only.suppress("mirror@example.com")

    exported = tmp_path / "hashes.txt"
    run = run_manage(
        "export_suppressions", "--format", "hashes", "--output", str(exported), env=env
    )
    assert run.returncode == 0, run.stderr.decode()
    [(digest,)] = service.on(
        service.cluster.primary,
        "SELECT encode(address_hash, 'hex') FROM suppression_suppression "
        "WHERE address = 'mirror@example.com'",
    )
    lines = exported.read_text().splitlines()
    assert lines[0].startswith("# suppression-hashes/1 cursor=")
    assert digest not in lines  # the replica's view, consistent with the cursor in its header

    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_policy_server", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on "), process.stderr.read() if not line else line
        port = int(line.strip().rsplit(":", 1)[1])
        assert _policy_answer(port, "mirror@example.com") == "action=DUNNO"
        service.cluster.resume_replay(0)
        service.cluster.wait_replayed(0)
        assert _policy_answer(port, "mirror@example.com").startswith("action=REJECT")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        process.stdout.close()
        process.stderr.close()

    after = run_manage(
        "export_suppressions", "--format", "hashes", "--output", str(exported), env=env
    )
    assert after.returncode == 0, after.stderr.decode()
    assert digest in exported.read_text().splitlines()


def test_a_replica_that_is_down_is_skipped_without_an_error(service):
    web = service.with_replica
    service.cluster.stop_replica(0)
    service.primary_only.suppress("while-down@example.com")
    assert web.check("while-down@example.com") is True
    assert web.batch_suppressed(["while-down@example.com"]) == ["while-down@example.com"]
    assert web.denied(["while-down@example.com"]) == ["while-down@example.com"]
    seen, _ = web.changes("0.0")
    assert seen
    export = web.request("GET", "/api/v1/suppressions/export?format=hashes")
    assert export.status == 200
    health = web.healthz()
    assert health.status == 200
    body = health.json()
    assert body["database"] == "ok"
    [replica] = body["replicas"]
    assert replica["ok"] is False
    assert replica["lag_seconds"] is None
    assert replica["error"].startswith("unreachable")

    service.cluster.start_replica(0)
    service.cluster.wait_replayed(0)
    assert web.healthz().json()["replicas"][0]["ok"] is True
