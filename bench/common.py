"""Helpers shared by the benchmarks: a fresh database, the production-like environment, an API
key, gunicorn on a loopback port, and a fast bulk load of suppression rows.

Everything talks to 127.0.0.1 only. Run the benchmarks from the project root or from anywhere:
paths are resolved from this file.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hmac
import math
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from suppression.addresses import address_hash, normalise  # noqa: E402

PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"

# BENCH_DATABASE lets two benchmarks run side by side without dropping each other's data.
DB_NAME = os.environ.get("BENCH_DATABASE", "bench_compliance")
PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
DSN = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{DB_NAME}"
ADMIN_DSN = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"

# Fixed, benchmark-only secrets (60 and 40 characters): never used anywhere else.
SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDE"
ADDRESS_HASH_KEY = "bench-address-hash-key-0123456789-abcdef"
UNSUBSCRIBE_TOKEN_KEY = "bench-unsubscribe-token-key-0123456789-abcdef"
assert len(SECRET_KEY) == 60 and len(ADDRESS_HASH_KEY) == 40

BENCH_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": SECRET_KEY,
    "ADDRESS_HASH_KEY": ADDRESS_HASH_KEY,
    # Required with DEBUG off since the unsubscribe tokens arrived: "key id:secret".
    "UNSUBSCRIBE_TOKEN_KEYS": f"1:{UNSUBSCRIBE_TOKEN_KEY}",
    # Only printed into links (RFC 8058 wants https); no benchmark requests it.
    "UNSUBSCRIBE_BASE_URL": "https://localhost",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "DATABASE_URL": f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{DB_NAME}",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "compliance.settings",
}

TABLE = "suppression_suppression"


class BenchError(RuntimeError):
    """The benchmark itself failed (not a missed target): the script exits non-zero."""


# --- output -----------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def verdict(value: float, target: float, *, at_most: bool) -> str:
    """'met' or 'MISSED' for a figure against its target."""
    ok = value <= target if at_most else value >= target
    return "met" if ok else "MISSED"


def print_summary(title: str, lines: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in lines)
    bar = "=" * 78
    print(f"\n{bar}\nSUMMARY: {title}\n{bar}")
    for name, value in lines:
        print(f"{name.ljust(width)}  {value}")
    print(bar, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


LOCK_PATH = Path(f"/tmp/{DB_NAME}.lock")


@contextlib.contextmanager
def exclusive_run(max_wait: float = 3600.0) -> Iterator[None]:
    """Hold an exclusive lock for the whole run: every benchmark that uses run_main shares the
    one database (dropped and created by create_database), so two at once would wreck each
    other's data, and their load would skew each other's figures."""
    with LOCK_PATH.open("a") as lock:
        deadline = time.monotonic() + max_wait
        waiting = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    log(f"another benchmark holds {LOCK_PATH} (database {DB_NAME}); waiting")
                    waiting = True
                if time.monotonic() > deadline:
                    raise BenchError(f"{LOCK_PATH} still held after {max_wait:.0f}s") from None
                time.sleep(1.0)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_main(main, parse_args=None) -> None:
    """Run `main()` (or `main(parse_args())`, the arguments read before waiting for the lock,
    so that --help and bad arguments answer at once) holding the benchmark lock; exit 1 (with
    the reason) if the benchmark failed. SIGTERM and SIGHUP become SystemExit so that every
    `finally` (gunicorn shutdown) runs."""

    def _terminate(signum, frame):
        raise SystemExit(128 + signum)

    args = parse_args() if parse_args is not None else None
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        with exclusive_run():
            code = main(args) if parse_args is not None else main()
    except BenchError as exc:
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return value


# --- environment and Django commands ----------------------------------------------------------


def use_database_server(port: int, host: str = "127.0.0.1") -> None:
    """Point every helper here, and the service processes they start, at another PostgreSQL
    server than the machine's own: a private cluster (batch_check.py --replica)."""
    global PG_HOST, PG_PORT, DSN, ADMIN_DSN
    PG_HOST, PG_PORT = host, port
    DSN = f"postgresql://{PG_USER}@{host}:{port}/{DB_NAME}"
    ADMIN_DSN = f"postgresql://{PG_USER}@{host}:{port}/postgres"
    BENCH_ENV["DATABASE_URL"] = f"postgres://{PG_USER}@{host}:{port}/{DB_NAME}"


def bench_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(BENCH_ENV)
    env.update(extra or {})
    return env


def manage(*args: str, timeout: float = 3600, check: bool = True,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python manage.py ARGS` with the benchmark environment (plus `env`); raise BenchError
    if it fails."""
    proc = subprocess.run(
        [str(PYTHON), "manage.py", *args], cwd=ROOT, env=bench_env(env), capture_output=True,
        text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise BenchError(
            f"manage.py {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def connect(**kwargs) -> psycopg.Connection:
    return psycopg.connect(DSN, **kwargs)


def create_database() -> None:
    """Drop and create the benchmark database, enable pgcrypto and run the migrations."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        # WITH (FORCE) ends sessions still open on it: only benchmark runs ever connect to it.
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    with connect(autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
    log(f"database {DB_NAME} created; migrating")
    manage("migrate", "--noinput")


def create_api_key(name: str = "bench") -> str:
    proc = manage("create_api_key", name, "--scopes", "suppression:read,suppression:write")
    key = proc.stdout.strip().splitlines()[-1].strip()
    if not key or " " in key:
        raise BenchError(f"could not read the API key from create_api_key's output: {proc.stdout}")
    return key


def default_tenant_id() -> int:
    with connect() as conn:
        row = conn.execute("SELECT id FROM compliance_tenant WHERE slug = 'default'").fetchone()
    if row is None:
        raise BenchError("no 'default' tenant after migrate")
    return row[0]


def commercial_scope_key(tenant_id: int) -> str:
    return f"{tenant_id}:commercial"


# --- addresses and hashes ---------------------------------------------------------------------


def listed_address(i: int) -> str:
    """The i-th loaded address (1-based); the load uses the same pattern in SQL."""
    return f"user{i}@example{i % 1000}.com"


def unlisted_address(i: int) -> str:
    return f"nobody{i}@example{i % 1000}.com"


def python_hash(address: str) -> bytes:
    """The application's own hash of an address (suppression.addresses needs no Django)."""
    return address_hash(normalise(address), ADDRESS_HASH_KEY.encode())


# --- gunicorn ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]


@contextlib.contextmanager
def gunicorn(workers: int, *, timeout: float = 60, extra_args: tuple[str, ...] = (),
             env: dict[str, str] | None = None) -> Iterator[Server]:
    """gunicorn on a free loopback port; stopped on the way out, whatever happens.

    `env` adds to the benchmark environment (e.g. another DJANGO_SETTINGS_MODULE for an
    experiment)."""
    port = free_port()
    log_path = Path(f"/tmp/bench_gunicorn_{port}.log")
    log_file = log_path.open("w")
    # No access log, as in production behind a proxy that logs: `--access-logfile /dev/null`
    # would still format a line per request.
    cmd = [str(GUNICORN), "compliance.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
           "--timeout", "120", *extra_args]
    process = subprocess.Popen(cmd, cwd=ROOT, env=bench_env(env), stdout=log_file,
                               stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(port=port, process=process, log_path=log_path)
    failed = True
    try:
        _wait_healthy(server, timeout)
        log(f"gunicorn pid {process.pid} ({workers} workers) on 127.0.0.1:{port}")
        yield server
        failed = False
    finally:
        _stop(process)
        log_file.close()
        if failed:
            log(f"gunicorn's log is kept in {log_path}")
        else:
            log_path.unlink(missing_ok=True)


def _wait_healthy(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"gunicorn exited {server.process.returncode}:\n"
                             f"{server.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    # Let every worker finish booting, not only the first one.
                    time.sleep(1.0)
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise BenchError(f"gunicorn did not become healthy within {timeout}s ({last}):\n"
                     f"{server.log_path.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to gunicorn's master (its own session), then SIGKILL to that group if needed."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


# --- bulk load --------------------------------------------------------------------------------

INSERT_SQL = f"""
INSERT INTO {TABLE} (
    id, tenant_id, scope, stream_id, topic_id, scope_key, address_hash, address, reason, origin,
    evidence_type_id, evidence_id, evidence_note, created_at, updated_at, expires_at, lifted_at)
SELECT i, %(tenant_id)s, 'commercial', NULL, NULL, %(scope_key)s,
       hmac(convert_to(a.address, 'UTF8'), convert_to(%(key)s, 'UTF8'), 'sha256'),
       a.address, 'unsubscribe', 'import', NULL, '', '',
       %(base)s::timestamptz - make_interval(secs => i),
       %(base)s::timestamptz - make_interval(secs => i), NULL, NULL
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i,
     LATERAL (SELECT 'user' || i || '@example' || (i %% 1000) || '.com' AS address) AS a
"""


@dataclass(frozen=True)
class Schema:
    """What Django created on the table, read back so it can be put back exactly."""

    # (name, constraint definition, definition of the index behind it or None)
    own_constraints: list[tuple[str, str, str | None]]
    referencing: list[tuple[str, str, str]]  # (table, name, definition) pointing at the table
    indexes: list[tuple[str, str]]  # (name, CREATE INDEX ...) not backing a constraint
    # The table's hash partitions (suppression/partitioning.py); empty for a plain table.
    partitions: list[str] = field(default_factory=list)


def read_schema(conn: psycopg.Connection) -> Schema:
    own = conn.execute(
        """SELECT conname, pg_get_constraintdef(oid),
                  CASE WHEN contype IN ('p', 'u') THEN pg_get_indexdef(conindid) END
           FROM pg_constraint WHERE conrelid = %s::regclass ORDER BY conname""", (TABLE,)
    ).fetchall()
    referencing = conn.execute(
        """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE confrelid = %s::regclass AND conrelid <> confrelid ORDER BY conname""", (TABLE,)
    ).fetchall()
    indexes = conn.execute(
        """SELECT i.indexname, i.indexdef FROM pg_indexes AS i
           WHERE i.schemaname = 'public' AND i.tablename = %s
             AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c
                             WHERE c.conindid = (quote_ident(i.indexname))::regclass
                               AND c.conrelid = %s::regclass)
           ORDER BY i.indexname""", (TABLE, TABLE)
    ).fetchall()
    partitions = conn.execute(
        """SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass
           ORDER BY 1""", (TABLE,)
    ).fetchall()
    return Schema(list(own), list(referencing), list(indexes), [p for (p,) in partitions])


def _drop_schema(conn: psycopg.Connection, schema: Schema) -> None:
    for table, name, _ in schema.referencing:  # they depend on the primary key
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in schema.indexes:
        conn.execute(f'DROP INDEX "{name}"')
    for name, _, _ in schema.own_constraints:
        conn.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')


def _recreate_schema(schema: Schema) -> None:
    """Indexes and constraints back, with the definitions read before the load.

    Every index (including those behind the primary key and the unique constraint) is built by
    CREATE INDEX, two sessions at a time (one per core; CREATE INDEX sessions do not block each
    other, ALTER TABLE would), then the constraints are attached to their indexes (USING INDEX,
    instant) and the foreign keys are added (one validating scan each).
    """
    keyed = [(name, definition, index_def)
             for name, definition, index_def in schema.own_constraints if index_def]
    others = [(name, definition)
              for name, definition, index_def in schema.own_constraints if not index_def]
    if schema.partitions:
        _recreate_partitioned_schema(schema, keyed, others)
        return
    builds = [index_def for _, _, index_def in keyed] + [d for _, d in schema.indexes]
    _run_parallel(builds, workers=2)
    with connect(autocommit=True) as conn:
        for name, definition, _ in keyed:
            kind = "PRIMARY KEY" if definition.startswith("PRIMARY KEY") else "UNIQUE"
            conn.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {kind} USING INDEX "{name}"')
        for name, definition in others:
            conn.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
        for table, name, definition in schema.referencing:
            conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


_INDEX_ON_PARENT = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+ (USING .+)$", re.DOTALL)


def _recreate_partitioned_schema(schema: Schema, keyed, others) -> None:
    """The same for a partitioned table, which cannot take a constraint USING INDEX: every
    index is built on each partition, two sessions at a time, the keys are made on each
    partition from their indexes, then the keys and indexes are declared on the table, which
    attaches the partitions' matching ones instead of building them again."""
    builds, partition_keys = [], []
    for name, definition, index_def in keyed:
        parts = _INDEX_ON_PARENT.match(index_def)
        if parts is None:
            raise BenchError(f"cannot read the partitioned index {index_def!r}")
        kind = "PRIMARY KEY" if definition.startswith("PRIMARY KEY") else "UNIQUE"
        for partition in schema.partitions:
            index = f"{partition}_{name}"[:63]
            builds.append(f'CREATE {parts[1] or ""}INDEX "{index}" ON {partition} {parts[2]}')
            partition_keys.append(
                f'ALTER TABLE {partition} ADD CONSTRAINT "{index}" {kind} USING INDEX "{index}"')
    for _, definition in schema.indexes:
        parts = _INDEX_ON_PARENT.match(definition)
        if parts is None:
            raise BenchError(f"cannot read the partitioned index {definition!r}")
        builds += [f"CREATE {parts[1] or ''}INDEX ON {partition} {parts[2]}"
                   for partition in schema.partitions]
    _run_parallel(builds, workers=2)
    with connect(autocommit=True) as conn:
        for statement in partition_keys:
            conn.execute(statement)
        for name, definition, _ in keyed:
            conn.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
        for _, definition in schema.indexes:
            conn.execute(definition.replace(" ON ONLY ", " ON ", 1))
        for name, definition in others:
            conn.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
        for table, name, definition in schema.referencing:
            conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        # Each index built above must now be attached, and none built a second time.
        on_partitions, attached = conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE EXISTS (
                          SELECT 1 FROM pg_inherits WHERE inhrelid = i.indexrelid))
               FROM pg_index AS i JOIN pg_inherits AS h ON h.inhrelid = i.indrelid
               WHERE h.inhparent = %s::regclass""", (TABLE,)
        ).fetchone()
    if on_partitions != attached or attached != len(builds):
        raise BenchError(f"{len(builds)} partition indexes built, {on_partitions} found, "
                         f"{attached} attached")


def _run_parallel(statements: list[str], *, workers: int) -> None:
    queue = list(statements)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with connect(autocommit=True) as conn:
                conn.execute("SET maintenance_work_mem = '1GB'")
                # One session per core already: no parallel workers on top.
                conn.execute("SET max_parallel_maintenance_workers = 0")
                while True:
                    with lock:
                        if not queue or errors:
                            return
                        statement = queue.pop(0)
                    conn.execute(statement)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError(f"rebuilding the schema failed: {errors[0]}") from errors[0]


def load_suppressions(rows: int, *, tenant_id: int, verify: int = 20) -> float:
    """Load `rows` active commercial entries of the default tenant (addresses `listed_address`);
    return the seconds it took. The table must be empty."""
    began = time.monotonic()
    scope_key = commercial_scope_key(tenant_id)
    with connect(autocommit=True) as conn:
        if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {TABLE})").fetchone()[0]:
            raise BenchError(f"{TABLE} is not empty before the load")
        schema = read_schema(conn)
        before = _schema_snapshot(conn)
        _drop_schema(conn, schema)
        base = conn.execute("SELECT now()").fetchone()[0]
    log(f"loading {rows:,} rows ({len(schema.indexes)} indexes, "
        f"{len(schema.own_constraints)} constraints dropped for the load)")
    # Two inserting sessions, one per core; each range is one transaction.
    halves = [(1, rows // 2), (rows // 2 + 1, rows)] if rows >= 1000 else [(1, rows)]
    errors: list[BaseException] = []

    def insert(first: int, last: int) -> None:
        try:
            with connect(autocommit=True) as conn:
                conn.execute("SET synchronous_commit = off")
                conn.execute(INSERT_SQL, {"tenant_id": tenant_id, "scope_key": scope_key,
                                          "key": ADDRESS_HASH_KEY, "base": base,
                                          "first": first, "last": last})
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=insert, args=half) for half in halves if half[0] <= half[1]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError(f"bulk insert failed: {errors[0]}") from errors[0]
    log(f"rows inserted after {time.monotonic() - began:.1f}s; rebuilding indexes")
    _recreate_schema(schema)
    with connect(autocommit=True) as conn:
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), "
            f"(SELECT max(id) FROM {TABLE}))"
        )
        after = _schema_snapshot(conn)
        if after != before:
            raise BenchError(f"schema differs after the load:\nbefore {before}\nafter  {after}")
        log(f"indexes rebuilt after {time.monotonic() - began:.1f}s; VACUUM ANALYZE")
        conn.execute(f"VACUUM ANALYZE {TABLE}")
        count = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        if count != rows:
            raise BenchError(f"loaded {count} rows, expected {rows}")
        verify_hashes(conn, rows, verify)
    seconds = time.monotonic() - began
    log(f"loaded {rows:,} rows in {seconds:.1f}s (hashes verified)")
    return seconds


def _schema_snapshot(conn: psycopg.Connection) -> list:
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY 1", (TABLE,)
    ).fetchall()
    constraints = conn.execute(
        """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = %s::regclass OR confrelid = %s::regclass ORDER BY 1""", (TABLE, TABLE)
    ).fetchall()
    return [indexes, constraints]


def verify_hashes(conn: psycopg.Connection, rows: int, sample: int) -> None:
    """Compare SQL-made hashes with the application's address_hash; fail loudly on a difference."""
    ids = {1, rows, (rows + 1) // 2}
    rng = random.Random(7)
    while len(ids) < min(sample, rows):
        ids.add(rng.randint(1, rows))
    found = conn.execute(
        f"SELECT id, address, address_hash FROM {TABLE} WHERE id = ANY(%s)", (sorted(ids),)
    ).fetchall()
    if len(found) != len(ids):
        raise BenchError(f"verification: expected {len(ids)} rows, found {len(found)}")
    for row_id, address, digest in found:
        if address != listed_address(row_id):
            raise BenchError(f"row {row_id}: address {address!r} != {listed_address(row_id)!r}")
        expected = python_hash(address)
        if bytes(digest) != expected:
            raise BenchError(
                f"row {row_id}: SQL hash {bytes(digest).hex()} != address_hash "
                f"{expected.hex()} for {address!r}: the load's HMAC does not match the app's"
            )


def table_rows(conn: psycopg.Connection, table: str = TABLE) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def prepare_loaded_database(rows: int, *, reuse: bool = False) -> tuple[int, float | None]:
    """A fresh database with `rows` loaded entries: (default tenant id, load seconds).

    With `reuse`, an existing database holding exactly `rows` entries and no history is kept
    (load seconds None): for repeated runs at a large size.
    """
    if reuse:
        try:
            with connect() as conn:
                count = table_rows(conn)
                events = table_rows(conn, "suppression_suppressionevent")
            if count == rows and events == 0:
                log(f"reusing {DB_NAME} with {count:,} rows")
                return default_tenant_id(), None
            log(f"cannot reuse: {count:,} rows and {events} events; loading afresh")
        except psycopg.Error as exc:
            log(f"cannot reuse the database ({exc}); loading afresh")
    create_database()
    tenant_id = default_tenant_id()
    return tenant_id, load_suppressions(rows, tenant_id=tenant_id)


# --- CPU accounting ---------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / _TICK, sum(values) / _TICK


_BACKENDS_SQL = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"


def postgres_backend_pids(conn: psycopg.Connection | None = None) -> list[int]:
    """Server processes of the sessions connected to the benchmark database."""
    if conn is not None:
        return [pid for (pid,) in conn.execute(_BACKENDS_SQL, (DB_NAME,)).fetchall()]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as own:
        return [pid for (pid,) in own.execute(_BACKENDS_SQL, (DB_NAME,)).fetchall()]


def _all_processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds) for every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        found[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK)
    return found


class CpuMeter:
    """CPU used during a measurement, split into: this process ("client"), the processes it
    started and theirs ("workers": gunicorn, manage.py, wrk), the PostgreSQL sessions of the
    benchmark database ("postgres"), and everything else on this shared machine ("other").

    A thread samples every `interval` seconds, so sessions and processes that end before stop()
    are counted up to their last sample.
    """

    def __init__(self, server: Server | None = None, *, interval: float = 0.5):
        self.interval = interval
        self._stop = threading.Event()
        self._first: dict[tuple[str, int], float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()

    def _sample(self) -> None:
        procs = _all_processes()
        me = os.getpid()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
        mine, todo = set(), list(children.get(me, []))
        while todo:
            pid = todo.pop()
            mine.add(pid)
            todo.extend(children.get(pid, []))
        try:
            backends = set(postgres_backend_pids(self._conn))
        except psycopg.Error:
            backends = set()
        with self._lock:
            for kind, pids in (("workers", mine), ("postgres", backends)):
                for pid in pids:
                    if pid in procs:
                        cpu = procs[pid][1]
                        self._first.setdefault((kind, pid), 0.0 if self._started else cpu)
                        self._last[(kind, pid)] = cpu

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self._conn = psycopg.connect(ADMIN_DSN, autocommit=True)
        self._started = False
        self._sample()  # what already ran before the start does not count
        self._started = True
        self._client0 = time.process_time()
        self._machine0 = machine_busy()[0]
        self._wall0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, float]:
        """CPU seconds per part, "wall" seconds, and "other_cores": other work's average load."""
        self._stop.set()
        self._thread.join()
        self._sample()
        self._conn.close()
        used = {"workers": 0.0, "postgres": 0.0}
        for (kind, pid), last in self._last.items():
            used[kind] += last - self._first.get((kind, pid), 0.0)
        used["client"] = time.process_time() - self._client0
        used["machine"] = machine_busy()[0] - self._machine0
        used["wall"] = time.monotonic() - self._wall0
        used["other"] = max(0.0, used["machine"] - used["workers"] - used["postgres"]
                            - used["client"])
        used["other_cores"] = used["other"] / used["wall"]
        return used


def machine_load(seconds: float = 2.0) -> float:
    """Cores busy on the whole machine over the next `seconds`."""
    busy0, total0 = machine_busy()
    time.sleep(seconds)
    busy1, total1 = machine_busy()
    cores = os.cpu_count() or 1
    return cores * (busy1 - busy0) / max(total1 - total0, 1e-9)


def wait_quiet(*, threshold: float = 0.3, max_wait: float = 180.0) -> float:
    """Wait (at most `max_wait` s) until other work on this shared machine uses under
    `threshold` cores, so it does not skew a measurement; return the last load seen."""
    if max_wait <= 0:
        return 0.0
    deadline = time.monotonic() + max_wait
    load = machine_load()
    if load < threshold:
        return load
    log(f"machine busy ({load:.2f} cores in use by other work); waiting up to {max_wait:.0f}s")
    while time.monotonic() < deadline:
        load = machine_load()
        if load < threshold:
            log(f"machine quiet ({load:.2f} cores busy)")
            return load
    log(f"WARNING: machine still busy ({load:.2f} cores); measuring anyway, figures may suffer")
    return load


def cpu_probe() -> float:
    """Milliseconds a fixed piece of single-threaded work takes (best of 3). Inside a VM, time
    taken by the host or its other guests shows neither in /proc/stat nor in CpuMeter, only as a
    slower CPU: compare this figure between runs to see whether the machine was slower."""
    key = b"probe-key-0123456789-0123456789-"
    best = math.inf
    for _ in range(3):
        began = time.perf_counter()
        for i in range(20_000):
            hmac.digest(key, f"user{i}@example{i % 1000}.com".encode(), "sha256")
        best = min(best, time.perf_counter() - began)
    return best * 1000


def timed_copy_into(table: str, columns: str, data: bytes, rows: int) -> float:
    """COPY `data` into the (empty) `table`; time it, check it stored `rows`, then empty the
    table again. The baseline of the import benchmarks."""
    with connect() as conn:
        began = time.perf_counter()
        with conn.cursor() as cur:
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for start in range(0, len(data), 1 << 20):
                    copy.write(data[start:start + (1 << 20)])
        conn.commit()
        elapsed = time.perf_counter() - began
        count = table_rows(conn, table)
        conn.execute(f"TRUNCATE {table} CASCADE")
        conn.commit()
    if count != rows:
        raise BenchError(f"COPY into {table} stored {count} rows, expected {rows}")
    return elapsed


_IMPORT_OUTCOME = re.compile(r"added (\d+), already (?:listed|recorded) (\d+), bad (\d+)")


def timed_import(command: str, path: Path) -> tuple[float, dict[str, int], str]:
    """Run an import command on `path` for the default tenant: (seconds, its counts, its
    output)."""
    began = time.perf_counter()
    proc = manage(command, str(path), "--tenant", "default")
    elapsed = time.perf_counter() - began
    found = _IMPORT_OUTCOME.search(proc.stdout)
    if not found:
        raise BenchError(f"could not read the import's outcome:\n{proc.stdout}")
    added, existing, bad = (int(g) for g in found.groups())
    return elapsed, {"added": added, "existing": existing, "bad": bad}, proc.stdout.strip()
