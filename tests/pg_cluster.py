"""A private PostgreSQL primary with streaming replicas on free loopback ports, from the machine's
own PostgreSQL programs: for the replica tests (tests/replicas/) and `bench/batch_check.py
--replica`.

    with pg_cluster(replicas=1) as cluster:
        cluster.create_database("compliance")
        primary = cluster.url("compliance")            # postgres://postgres@127.0.0.1:PORT/...
        replica = cluster.replica_url(0, "compliance")
        cluster.pause_replay(0)
        ...

The clusters live in a fresh directory under the system's temporary directory and are stopped
(`pg_ctl -m immediate`) and removed on the way out, whatever happens. initdb and postgres refuse
to run as root, so under root every program runs as the `postgres` user (runuser) in a directory
that user owns. Replicas are `pg_basebackup -R` copies of the primary that stream from it (hot
standby, so they answer reads). fsync is off: these clusters are thrown away.
No pytest here, so that the benchmarks can import it; tests use `require_pg_cluster`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

LOOPBACK = "127.0.0.1"
SUPERUSER = "postgres"
_PROGRAMS = ("initdb", "pg_ctl", "postgres", "pg_basebackup")


class ClusterError(RuntimeError):
    """A cluster did not start or did not do what was asked; the message holds its log's end."""


def bin_dir() -> Path | None:
    """The directory of the newest installed PostgreSQL server programs (Debian keeps them in
    /usr/lib/postgresql/VERSION/bin, off the PATH), or None when they are missing."""
    found = []
    for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb"):
        with contextlib.suppress(ValueError):
            found.append((int(initdb.parent.parent.name.split(".")[0]), initdb.parent))
    if found:
        return max(found)[1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing_programs() -> list[str]:
    """What this module needs and the machine lacks (empty when it can run)."""
    directory = bin_dir()
    missing = [p for p in _PROGRAMS if directory is None or not (directory / p).exists()]
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            missing.append("runuser")
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            missing.append(f"the {SUPERUSER!r} user")
    return missing


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """One postgres of the cluster: its data directory and port."""

    name: str
    data: Path
    port: int

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.name}.log"


@dataclass
class Cluster:
    root: Path
    primary: Server
    replicas: list[Server] = field(default_factory=list)

    # --- addresses ---

    def url(self, dbname: str) -> str:
        """The primary's URL, as DATABASE_URL takes it."""
        return f"postgres://{SUPERUSER}@{LOOPBACK}:{self.primary.port}/{dbname}"

    def replica_url(self, number: int, dbname: str) -> str:
        return f"postgres://{SUPERUSER}@{LOOPBACK}:{self.replicas[number].port}/{dbname}"

    def connect(self, server: Server | None = None, dbname: str = "postgres", **kwargs):
        """A psycopg connection (autocommit) to the primary or to `server`."""
        server = server or self.primary
        return psycopg.connect(
            host=LOOPBACK,
            port=server.port,
            user=SUPERUSER,
            dbname=dbname,
            autocommit=True,
            connect_timeout=5,
            **kwargs,
        )

    # --- the primary ---

    def create_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    # --- replicas ---

    def add_replica(self) -> Server:
        """A new streaming replica of the primary, started and caught up."""
        server = Server(
            f"replica{len(self.replicas)}", self.root / f"replica{len(self.replicas)}", 0
        )
        server.port = free_port()
        _run_as_owner(
            [
                _program("pg_basebackup"),
                "-h",
                LOOPBACK,
                "-p",
                str(self.primary.port),
                "-U",
                SUPERUSER,
                "-D",
                str(server.data),
                "-R",  # standby.signal and primary_conninfo: a streaming standby
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
            cwd=self.root,
        )
        with (server.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {server.port}\n")
        self.replicas.append(server)
        self.start(server)
        self.wait_replayed(len(self.replicas) - 1)
        return server

    def start(self, server: Server) -> None:
        _pg_ctl(server, "start", "-w", "-t", "60", "-l", str(server.log))
        deadline = time.monotonic() + 30
        while True:
            try:
                with self.connect(server):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"{server.name} did not answer:\n{_tail(server.log)}"
                    ) from None
                time.sleep(0.1)

    def stop(self, server: Server) -> None:
        """Stop at once, as a crash would (`pg_ctl -m immediate`)."""
        _pg_ctl(server, "stop", "-m", "immediate", "-w", check=False)

    def stop_replica(self, number: int) -> None:
        self.stop(self.replicas[number])

    def start_replica(self, number: int) -> None:
        self.start(self.replicas[number])

    def pause_replay(self, number: int) -> None:
        """The replica keeps receiving WAL but applies none of it: it falls behind."""
        with self.connect(self.replicas[number]) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self, number: int) -> None:
        with self.connect(self.replicas[number]) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    def mark(self) -> None:
        """Commit a transaction on the primary now: a fresh commit time for replicas to replay
        (their lag is measured from the last commit they replayed)."""
        with self.connect() as conn:
            # A row, not just a transaction id: a commit that wrote nothing else is flushed
            # lazily (asynchronous commit), so pg_current_wal_lsn() could still be before it.
            conn.execute("CREATE TABLE IF NOT EXISTS cluster_mark (at timestamptz)")
            conn.execute("INSERT INTO cluster_mark VALUES (now())")

    def wait_replayed(self, number: int, timeout: float = 30) -> None:
        """Until replica `number` has replayed everything the primary has written so far."""
        self._wait_for(number, "pg_last_wal_replay_lsn()", timeout)

    def wait_received(self, number: int, timeout: float = 30) -> None:
        """Until replica `number` has received (not necessarily replayed) everything the
        primary has written so far."""
        self._wait_for(number, "pg_last_wal_receive_lsn()", timeout)

    def _wait_for(self, number: int, position: str, timeout: float) -> None:
        with self.connect() as conn:
            (target,) = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        deadline = time.monotonic() + timeout
        with self.connect(self.replicas[number]) as conn:
            while True:
                (done,) = conn.execute(
                    f"SELECT {position} >= %s::pg_lsn", (str(target),)
                ).fetchone()
                if done:
                    return
                if time.monotonic() > deadline:
                    raise ClusterError(f"replica {number}: {position} did not reach {target}")
                time.sleep(0.05)

    def close(self) -> None:
        for server in [*self.replicas, self.primary]:
            self.stop(server)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def pg_cluster(*, replicas: int = 1, settings: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A primary and `replicas` streaming replicas, started; stopped and removed afterwards.
    `settings` are added to the primary's postgresql.conf (and so to the replicas')."""
    missing = missing_programs()
    if missing:
        raise ClusterError(f"missing to run a PostgreSQL cluster: {', '.join(missing)}")
    root = Path(tempfile.mkdtemp(prefix="pg-cluster-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam(SUPERUSER)
        os.chown(root, owner.pw_uid, owner.pw_gid)
    cluster = Cluster(root=root, primary=Server("primary", root / "primary", free_port()))
    try:
        _init_primary(cluster.primary, settings or {})
        cluster.start(cluster.primary)
        for _ in range(replicas):
            cluster.add_replica()
        yield cluster
    finally:
        cluster.close()


def _init_primary(server: Server, settings: dict[str, str]) -> None:
    _run_as_owner(
        [
            _program("initdb"),
            "-D",
            str(server.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ],
        cwd=server.data.parent,
    )
    conf = {
        "listen_addresses": f"'{LOOPBACK}'",
        "port": str(server.port),
        # Sockets in the cluster's own directory, never beside the machine's own server's.
        "unix_socket_directories": f"'{server.data.parent}'",
        "wal_level": "replica",
        "max_wal_senders": "10",
        "hot_standby": "on",
        # Replicas tell the primary which rows their queries still read, so a long export on a
        # replica is not cancelled by replayed vacuuming.
        "hot_standby_feedback": "on",
        # Cheap durability for a cluster that is thrown away; commits stay synchronous, so a
        # commit is in the WAL the replicas are sent (pg_current_wal_lsn) once it returns.
        "fsync": "off",
        "full_page_writes": "off",
        **settings,
    }
    with (server.data / "postgresql.conf").open("a") as out:
        out.write("\n" + "".join(f"{k} = {v}\n" for k, v in conf.items()))
    # Loopback only, without passwords: the replicas' replication connections included.
    (server.data / "pg_hba.conf").write_text(
        "local all all trust\n"
        f"host all all {LOOPBACK}/32 trust\n"
        f"host replication all {LOOPBACK}/32 trust\n"
    )


def _program(name: str) -> str:
    directory = bin_dir()
    if directory is None:
        raise ClusterError("no PostgreSQL server programs on this machine")
    return str(directory / name)


def _run_as_owner(
    command: list[str], *, cwd: Path, check: bool = True
) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program as the cluster's owner: `postgres` under root (initdb and
    postgres refuse root), the current user otherwise."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", SUPERUSER, "--", *command]
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        raise ClusterError(
            f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def _pg_ctl(server: Server, action: str, *args: str, check: bool = True) -> None:
    result = _run_as_owner(
        [_program("pg_ctl"), "-D", str(server.data), action, *args],
        cwd=server.data.parent,
        check=False,
    )
    if check and result.returncode != 0:
        raise ClusterError(
            f"pg_ctl {action} of {server.name} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}\n{_tail(server.log)}"
        )


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
